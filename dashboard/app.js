// The board's dashboard. Live figures come over the best link that works: the WebSocket
// /ws/live (the board pushes them once a second), else the event stream /events (same JSON),
// else polling /status, /api/led and /api/temperature. A link that drops (or goes silent) is
// retried from the WebSocket on, after a backoff that doubles up to 30 s, with jitter so many
// pages do not come back at once. The LED is switched over the WebSocket, else with PUT
// /api/led; a board with an api_token wants it: the page asks once and keeps it in localStorage.
'use strict';
(() => {
  const $ = id => document.getElementById(id);
  const KEY = 'nostall-token';
  const NAMES = ['WebSocket', 'SSE', 'polling'];
  const SILENT_MS = 5000; // no figures this long (they come every second): the link is down
  const POLL_MS = 2000;
  const FETCH_MS = 4000; // a poll that takes longer has failed
  const UPGRADE_MS = 60000; // on SSE or polling, try the WebSocket again this often
  const CAP_S = 30; // the longest wait between two reconnection rounds
  const KEEP = 60; // samples in the charts

  let tr = 0; // the link being tried or used: 0 WebSocket, 1 SSE, 2 polling
  let gen = 0; // bumped by stop(): callbacks of an older link do nothing
  let ws = null;
  let es = null;
  let timer = 0;
  let silent = 0;
  let upgrade = 0;
  let fails = 0; // reconnection rounds in a row that failed: the backoff's exponent
  let live = false; // figures came over this link
  let again = false; // this link is tried a second time: the first try went silent
  let upSince = 0;
  let led = null;
  let ledAt = 0; // when the board last answered an LED change
  let pending = null; // the LED state to set once a token is given
  const heap = [];
  const rate = [];

  function show(state, text) {
    document.body.dataset.link = state;
    $('state').textContent = text;
    $('retry').hidden = state !== 'down';
  }

  function stop() {
    gen++;
    clearTimeout(timer);
    clearTimeout(silent);
    clearTimeout(upgrade);
    if (ws) {
      ws.onclose = ws.onmessage = null;
      ws.close();
      ws = null;
    }
    if (es) {
      es.close();
      es = null;
    }
  }

  function start(i, retry) {
    stop();
    const g = gen;
    tr = i;
    live = false;
    again = !!retry;
    document.body.dataset.transport = ['ws', 'sse', 'poll'][i];
    $('via').textContent = 'via ' + NAMES[i];
    show('connecting', 'connecting…');
    silent = setTimeout(() => failed(g, true), SILENT_MS);
    [openWs, openSse, poll][i](g);
  }

  // link g ended: before any figures came, the next one is tried at once if the board answers
  // (one that is down refuses every link alike: falling back then would land on polling when it
  // comes back); one that only went silent (quiet: no refusal, its frames were lost while the
  // Wi-Fi was down) is tried once more first; after the last one, or once a link that worked
  // drops, the page waits and starts again from the WebSocket
  function failed(g, quiet) {
    if (g !== gen) return;
    const wasLive = live;
    const from = tr;
    stop();
    const g2 = gen;
    if (!wasLive && from < 2) {
      const next = quiet && !again ? from : from + 1;
      get('/status').then(() => { if (g2 === gen) start(next, next === from); }, () => { if (g2 === gen) backoff(false); });
      return;
    }
    backoff(wasLive);
  }

  function backoff(wasLive) {
    if (wasLive && Date.now() - upSince > 10000) fails = 0;
    const d = Math.min(CAP_S, 2 ** fails++);
    const until = Date.now() + (d / 2 + Math.random() * d / 2) * 1000;
    const g2 = gen;
    const count = () => {
      if (g2 !== gen) return;
      const left = until - Date.now();
      if (left <= 0) return start(0);
      show('down', 'link down: reconnecting in ' + Math.ceil(left / 1000) + ' s');
      timer = setTimeout(count, left % 1000 || 1000);
    };
    count();
  }

  function figures(g, s) {
    if (g !== gen) return;
    if (!live) {
      live = true;
      upSince = Date.now();
      show('up', 'live');
      if (tr > 0) upgrade = setTimeout(() => start(0), UPGRADE_MS);
      if (tr < 2) title();
    }
    clearTimeout(silent);
    silent = setTimeout(() => failed(g), SILENT_MS);
    render(s);
  }

  function openWs(g) {
    const w = ws = new WebSocket((location.protocol === 'https:' ? 'wss://' : 'ws://') + location.host + '/ws/live');
    w.onmessage = e => {
      let m;
      try { m = JSON.parse(e.data); } catch (x) { return; }
      if (m.t) answer(m); else figures(g, m);
    };
    w.onclose = () => failed(g); // also after an error
  }

  function openSse(g) {
    es = new EventSource('/events');
    es.onmessage = e => {
      let m;
      try { m = JSON.parse(e.data); } catch (x) { return; }
      figures(g, m);
    };
    es.onerror = () => failed(g); // EventSource would retry by itself: this page decides when
  }

  async function get(url, opts) {
    const c = new AbortController();
    const t = setTimeout(() => c.abort(), FETCH_MS);
    try {
      return await fetch(url, Object.assign({cache: 'no-store', signal: c.signal}, opts));
    } finally {
      clearTimeout(t);
    }
  }

  async function json(url, key) {
    const r = await get(url);
    if (r.status === 404 && key) return null; // no LED or no sensor on this board
    if (!r.ok) throw new Error(url + ': ' + r.status);
    const j = await r.json();
    return key ? j[key] : j;
  }

  async function poll(g) {
    let prev = null;
    while (g === gen) {
      const t0 = Date.now();
      let s;
      try {
        s = await json('/status');
        s.led = await json('/api/led', 'on');
        s.celsius = await json('/api/temperature', 'celsius');
      } catch (e) {
        return failed(g);
      }
      s.requests_per_s = prev ? Math.round((s.requests - prev.requests) * 1000 / (t0 - prev.t)) : null;
      prev = {requests: s.requests, t: t0};
      title(s);
      figures(g, s);
      await new Promise(r => setTimeout(r, Math.max(0, POLL_MS - (Date.now() - t0))));
    }
  }

  async function title(s) {
    try {
      s = s || await json('/status');
      $('title').textContent = 'nostall ' + s.firmware_version + ' · ' + s.board;
    } catch (e) { /* the figures say whether the board is there */ }
  }

  // ---- showing the figures ----

  function dur(ms) {
    let s = Math.floor(ms / 1000);
    const out = [];
    for (const [n, u] of [[86400, 'd'], [3600, 'h'], [60, 'min'], [1, 's']]) {
      const v = Math.floor(s / n);
      s %= n;
      if (v || out.length || n === 1) out.push(v + ' ' + u);
    }
    return out.slice(0, 2).join(' ');
  }

  function kb(n) {
    return n == null ? '–' : (n / 1024).toFixed(1) + ' KB';
  }

  function put(id, v) {
    $(id).textContent = v == null ? '–' : v;
  }

  function chart(id, list, v) {
    list.push(v || 0);
    if (list.length > KEEP) list.shift();
    const max = Math.max(...list) || 1;
    $(id).firstElementChild.setAttribute('points',
      list.map((y, x) => (x + KEEP - list.length) + ',' + (19.5 - 19 * y / max).toFixed(1)).join(' '));
  }

  function render(s) {
    $('uptime').textContent = dur(s.uptime_ms);
    $('uptime').dataset.ms = s.uptime_ms;
    put('heap_alloc', kb(s.heap_alloc));
    put('heap_free', kb(s.heap_free));
    $('heap_bar').style.width = (100 * s.heap_alloc / (s.heap_alloc + s.heap_free)).toFixed(1) + '%';
    for (const k of ['requests_per_s', 'requests', 'connections_open', 'connections_peak', 'long_lived_open',
      'closes_by_client', 'closes_by_server_total', 'server_resets', 'resets_by_client']) put(k, s[k]);
    put('celsius', s.celsius == null ? null : s.celsius.toFixed(1) + ' °C');
    chart('heap_chart', heap, s.heap_alloc);
    chart('rate_chart', rate, s.requests_per_s);
    // figures published just before an LED change may arrive just after its answer
    if (Date.now() - ledAt > 1500) setLed(s.led);
  }

  // ---- the LED, and the token it may need ----

  function setLed(on) {
    led = on;
    const b = $('led');
    b.disabled = on == null;
    b.textContent = on == null ? 'no LED' : 'LED ' + (on ? 'on' : 'off');
    b.setAttribute('aria-pressed', on === true);
  }

  function err(text) {
    $('err').textContent = text;
  }

  async function toggle(on) {
    const token = localStorage.getItem(KEY) || '';
    pending = on;
    err('');
    if (tr === 0 && live && ws && ws.readyState === WebSocket.OPEN) {
      ws.send(JSON.stringify({led: on, token}));
      return;
    }
    try {
      const h = {'Content-Type': 'application/json'};
      if (token) h.Authorization = 'Bearer ' + token;
      const r = await get('/api/led', {method: 'PUT', headers: h, body: JSON.stringify({on})});
      answer(r.ok ? {t: 'led', on: (await r.json()).on} : {t: 'error', status: r.status, reason: await r.text()});
    } catch (e) {
      err('LED: ' + e.message);
    }
  }

  function answer(m) {
    if (m.t === 'led') {
      pending = null;
      ledAt = Date.now();
      setLed(m.on);
      err('');
    } else if (m.status === 401) {
      const had = localStorage.getItem(KEY);
      $('tokmsg').textContent = had ? 'The board refused the stored API token: enter the right one.'
        : 'This board wants its API token (api_token in its settings.json) to switch the LED.';
      $('tokf').hidden = false;
      $('tok').value = '';
      $('tok').focus();
    } else {
      err('LED: ' + m.status + ' ' + (m.reason || ''));
    }
  }

  $('led').onclick = () => toggle(!led);
  $('tokf').onsubmit = e => {
    e.preventDefault();
    const v = $('tok').value.trim();
    if (v) localStorage.setItem(KEY, v); else localStorage.removeItem(KEY);
    $('tokf').hidden = true;
    if (pending != null) toggle(pending);
  };
  $('tokno').onclick = () => {
    $('tokf').hidden = true;
    pending = null;
    err('LED unchanged: no token given');
  };
  $('retry').onclick = () => {
    fails = 0;
    start(0);
  };

  start(0);
})();
