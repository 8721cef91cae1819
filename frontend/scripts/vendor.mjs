// Copy the third-party browser files the pages load from node_modules into vendor/ (served at /vendor/).
// Run by `npm install` / `npm ci` (postinstall) and `npm run build`. Nothing is fetched from a CDN.
import { copyFileSync, mkdirSync, renameSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const root = join(dirname(fileURLToPath(import.meta.url)), "..");
const files = [
  ["node_modules/socket.io-client/dist/socket.io.esm.min.js", "vendor/socket.io.esm.min.js"],
  ["node_modules/socket.io-client/dist/socket.io.esm.min.js.map", "vendor/socket.io.esm.min.js.map"],
];

mkdirSync(join(root, "vendor"), { recursive: true });
for (const [from, to] of files) {
  const target = join(root, to);
  copyFileSync(join(root, from), `${target}.partial`);
  renameSync(`${target}.partial`, target); // never leave a half-copied file behind
  console.log(`vendor: ${from} -> ${to}`);
}
