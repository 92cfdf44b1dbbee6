'use strict';
// A minimal XMLHttpRequest for Node, which has none. Autobahn|JS's long-poll transport runs on the
// browser's XMLHttpRequest (util.http_post); installing this one as the global lets that transport run
// unmodified in Node. It implements exactly what http_post uses: open, setRequestHeader, send, timeout
// and ontimeout, onreadystatechange, readyState, status, statusText and responseText.

const http = require('node:http');

class XMLHttpRequest {
  constructor() {
    this.readyState = 0;
    this.status = 0;
    this.statusText = '';
    this.responseText = '';
    this.timeout = 0;
    this.withCredentials = false;
    this.onreadystatechange = null;
    this.ontimeout = null;
    this._headers = {};
    this._finished = false;
  }

  open(method, url) {
    this._method = method;
    this._url = new URL(url);
    this.readyState = 1;
  }

  setRequestHeader(name, value) {
    this._headers[name] = value;
  }

  _finish(status, statusText, text, timedOut = false) {
    if (this._finished) return;
    this._finished = true;
    clearTimeout(this._timer);
    this.status = status;
    this.statusText = statusText;
    this.responseText = text;
    this.readyState = 4;
    if (this.onreadystatechange) this.onreadystatechange();
    if (timedOut && this.ontimeout) this.ontimeout();
  }

  send(body) {
    const data = body === undefined || body === null ? Buffer.alloc(0) : Buffer.from(String(body), 'utf8');
    const request = http.request({
      method: this._method,
      hostname: this._url.hostname,
      port: this._url.port,
      path: this._url.pathname + this._url.search,
      headers: { ...this._headers, 'Content-Length': data.length },
    }, (response) => {
      const chunks = [];
      response.on('data', (chunk) => chunks.push(chunk));
      response.on('end', () => this._finish(response.statusCode, response.statusMessage,
        Buffer.concat(chunks).toString('utf8')));
      response.on('error', () => this._finish(0, '', ''));
    });
    request.on('error', () => this._finish(0, '', ''));
    if (this.timeout > 0) {
      this._timer = setTimeout(() => {
        request.destroy();
        this._finish(0, '', '', true);
      }, this.timeout);
    }
    request.end(data);
  }
}

/** Installs XMLHttpRequest as a global (what a browser provides), once. */
function install() {
  if (typeof globalThis.XMLHttpRequest === 'undefined') globalThis.XMLHttpRequest = XMLHttpRequest;
}

module.exports = { XMLHttpRequest, install };
