/**
 * The connection-lost banner (in _layout.html): shown while the live feed has no connection (lost, or never
 * made: a proxy that blocks WebSocket). Socket.IO reconnects by itself, and meanwhile the feed polls the jobs
 * over HTTP (``socket.js``); once connected, the pages re-read their jobs and the banner goes. A socket the
 * server signed out (its credential revoked) does not come back: the banner then says the server's message.
 */

/**
 * @param {boolean} connected
 * @param {string} [signedOut] the server's message when it signed the socket out
 */
export function showConnection(connected, signedOut) {
  document.body.classList.toggle("offline", !connected);
  const banner = document.getElementById("connection-lost");
  if (!banner) return;
  banner.hidden = connected;
  if (signedOut) {
    const line = document.createElement("strong");
    line.textContent = signedOut;
    banner.replaceChildren(line);
  }
}
