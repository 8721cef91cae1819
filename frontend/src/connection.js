/**
 * The connection-lost banner (in _layout.html): shown while the live feed is disconnected. Socket.IO
 * reconnects by itself; when it does, the pages re-read their jobs over HTTP and the banner goes.
 */

/** @param {boolean} connected */
export function showConnection(connected) {
  document.body.classList.toggle("offline", !connected);
  const banner = document.getElementById("connection-lost");
  if (banner) banner.hidden = connected;
}
