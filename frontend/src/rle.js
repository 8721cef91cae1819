/**
 * COCO run-length encoded masks, decoded in the browser.
 *
 * A mask arrives as `{size: [height, width], counts: "<COCO compressed RLE string>"}`: the runs alternate
 * background / object, start with background, and walk the image column by column (column-major, Fortran
 * order), exactly as pycocotools writes them. Everything here returns row-major data (index = y * width + x),
 * the order canvases use.
 */

/**
 * Decode pycocotools' compressed counts string into run lengths.
 * Each count is a little-endian sequence of 5-bit groups in characters offset by 48; a set 0x20 bit means
 * "more groups follow", a set 0x10 bit in the last group means the value is negative. From the third count
 * on, each value is stored as the difference to the count two places before it.
 * @param {string} text
 * @returns {number[]} run lengths (non-negative integers)
 * @throws {Error} on a truncated or malformed string
 */
export function decodeCounts(text) {
  const counts = [];
  let pos = 0;
  while (pos < text.length) {
    let value = 0;
    let scale = 1;
    let more = true;
    while (more) {
      if (pos >= text.length) throw new Error("RLE counts string ends in the middle of a number");
      const c = text.charCodeAt(pos) - 48;
      if (c < 0 || c > 63) throw new Error(`RLE counts string has an invalid character at ${pos}`);
      value += (c & 0x1f) * scale;
      scale *= 32;
      more = (c & 0x20) !== 0;
      pos += 1;
      if (!more && (c & 0x10)) value -= scale; // sign-extend the last group
    }
    if (counts.length > 2) value += counts[counts.length - 2];
    if (value < 0) throw new Error(`RLE run ${counts.length} has a negative length`);
    counts.push(value);
  }
  return counts;
}

/**
 * Encode run lengths as pycocotools' compressed string (the inverse of decodeCounts).
 * @param {ArrayLike<number>} counts
 * @returns {string}
 */
export function encodeCounts(counts) {
  let out = "";
  for (let i = 0; i < counts.length; i++) {
    let x = counts[i];
    if (i > 2) x -= counts[i - 2];
    let more = true;
    while (more) {
      let c = ((x % 32) + 32) % 32; // low 5 bits, also for negative x
      x = (x - c) / 32;
      more = c & 0x10 ? x !== -1 : x !== 0;
      if (more) c |= 0x20;
      out += String.fromCharCode(c + 48);
    }
  }
  return out;
}

/**
 * Run lengths of one mask, checked against its size.
 * @param {{size: [number, number], counts: string | number[]}} rle
 * @returns {{height: number, width: number, counts: number[]}}
 * @throws {Error} when the runs do not cover height * width pixels exactly
 */
export function maskRuns(rle) {
  const [height, width] = rle.size;
  const counts = typeof rle.counts === "string" ? decodeCounts(rle.counts) : Array.from(rle.counts);
  let total = 0;
  for (const n of counts) total += n;
  if (total !== height * width) {
    throw new Error(`RLE covers ${total} pixels but its size ${height}x${width} has ${height * width}`);
  }
  return { height, width, counts };
}

/**
 * Call `visit(index)` for every object pixel of a mask, with index = y * width + x (row-major).
 * Cost is proportional to the object's area, not the image's.
 * @param {{height: number, width: number, counts: number[]}} runs
 * @param {(index: number, x: number, y: number) => void} visit
 */
export function forEachMaskPixel(runs, visit) {
  const { height, width, counts } = runs;
  let start = 0;
  for (let r = 0; r < counts.length; r++) {
    const length = counts[r];
    if (r % 2 === 1 && length > 0) {
      let x = Math.floor(start / height);
      let y = start - x * height;
      for (let k = 0; k < length; k++) {
        visit(y * width + x, x, y);
        y += 1;
        if (y === height) {
          y = 0;
          x += 1;
        }
      }
    }
    start += length;
  }
}

/**
 * Decode a mask into a row-major Uint8Array of 0/1.
 * @param {{size: [number, number], counts: string | number[]}} rle
 * @returns {{height: number, width: number, data: Uint8Array}}
 */
export function decodeMask(rle) {
  const runs = maskRuns(rle);
  const data = new Uint8Array(runs.height * runs.width);
  forEachMaskPixel(runs, (i) => {
    data[i] = 1;
  });
  return { height: runs.height, width: runs.width, data };
}

/**
 * Tight pixel bounds of a mask, from its runs: `{x, y, width, height}` or null for an empty mask.
 * @param {{height: number, width: number, counts: number[]}} runs
 */
export function maskBounds(runs) {
  const { height, counts } = runs;
  let x0 = Infinity;
  let x1 = -1;
  let y0 = Infinity;
  let y1 = -1;
  let start = 0;
  for (let r = 0; r < counts.length; r++) {
    const length = counts[r];
    if (r % 2 === 1 && length > 0) {
      const end = start + length - 1;
      const cs = Math.floor(start / height);
      const ce = Math.floor(end / height);
      x0 = Math.min(x0, cs);
      x1 = Math.max(x1, ce);
      if (cs === ce) {
        y0 = Math.min(y0, start - cs * height);
        y1 = Math.max(y1, end - ce * height);
      } else {
        // The run wraps from the bottom of one column to the top of the next: it touches every row.
        y0 = 0;
        y1 = height - 1;
      }
    }
    start += length;
  }
  if (x1 < 0) return null;
  return { x: x0, y: y0, width: x1 - x0 + 1, height: y1 - y0 + 1 };
}

/**
 * Instance-id map: for every pixel, the index of the instance drawn on top there, or -1 for none.
 *
 * Drawing order: instances are stacked in ascending score, so the highest-scored one is on top; among equal
 * scores the lower index is on top. `order` lists instance indices top first (see stackOrder); only those
 * listed are drawn, so hidden instances are simply left out.
 *
 * @param {number} width
 * @param {number} height
 * @param {{height: number, width: number, counts: number[]}[]} runsList decoded runs per instance index
 * @param {number[]} order instance indices, top first
 * @returns {Int32Array} row-major, length width * height
 */
export function buildInstanceMap(width, height, runsList, order) {
  const map = new Int32Array(width * height).fill(-1);
  for (const index of order) {
    const runs = runsList[index];
    if (runs.width !== width || runs.height !== height) {
      throw new Error(`mask ${index} is ${runs.width}x${runs.height}, the image ${width}x${height}`);
    }
    // Top first: a pixel already claimed belongs to an instance above this one. (Inlined walk of the
    // column-major runs: this runs over every object pixel of a 12 MP image when visibility changes.)
    const counts = runs.counts;
    let start = 0;
    for (let r = 0; r < counts.length; r++) {
      const length = counts[r];
      if (r % 2 === 1 && length > 0) {
        let x = Math.floor(start / height);
        let y = start - x * height;
        let i = y * width + x;
        for (let k = 0; k < length; k++) {
          if (map[i] < 0) map[i] = index;
          y += 1;
          i += width;
          if (y === height) {
            y = 0;
            x += 1;
            i = x;
          }
        }
      }
      start += length;
    }
  }
  return map;
}

/**
 * Instance indices top first: highest score first, ties broken by the lower index.
 * @param {{score: number}[]} instances
 * @param {(index: number) => boolean} [isVisible]
 * @returns {number[]}
 */
export function stackOrder(instances, isVisible = () => true) {
  const order = [];
  for (let i = 0; i < instances.length; i++) if (isVisible(i)) order.push(i);
  order.sort((a, b) => instances[b].score - instances[a].score || a - b);
  return order;
}
