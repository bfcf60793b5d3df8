// The board's dashboard. Live figures come over the best link that works: the WebSocket
// /ws/live (the board pushes them once a second), else the event stream /events (same JSON),
// else polling /status, /api/led and /api/temperature. A link that drops (or goes silent) is
// retried from the WebSocket on, after a backoff that doubles up to 30 s, with jitter so many
// pages do not come back at once. The LED is switched over the WebSocket, else with PUT
// /api/led; a board with an api_token wants it: the page asks once and keeps it in localStorage.
// The update panel sends a firmware image and follows the board through its reset.
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
  const BUSY_TRIES = 2; // a busy 503 is tried again this many times
  const BUSY_WAIT_S = 5; // if its Retry-After is at most this long (the board's busy 503 says 1 s)
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
  let then = null; // [what to do once a token is given, what to do if none is]
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

  const sleep = ms => new Promise(r => setTimeout(r, ms)); // at once when ms <= 0

  // a GET, or the LED's PUT (both may be sent again); the board's busy 503 (every slot taken for
  // a moment) is tried again after its Retry-After, twice at most, as the board asks
  async function get(url, opts) {
    for (let tries = 0; ; tries++) {
      const c = new AbortController();
      const t = setTimeout(() => c.abort(), FETCH_MS);
      let r;
      try {
        r = await fetch(url, Object.assign({cache: 'no-store', signal: c.signal}, opts));
      } finally {
        clearTimeout(t);
      }
      const wait = r.status === 503 ? Number(r.headers.get('Retry-After')) : 0;
      if (tries >= BUSY_TRIES || !(wait > 0 && wait <= BUSY_WAIT_S)) return r;
      await sleep(wait * 1000);
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
      await sleep(POLL_MS - (Date.now() - t0));
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
      ask('switch the LED', () => toggle(pending), () => {
        pending = null;
        err('LED unchanged: no token given');
      });
    } else {
      err('LED: ' + m.status + ' ' + (m.reason || ''));
    }
  }

  function ask(what, go, none) {
    then = [go, none];
    $('tokmsg').textContent = localStorage.getItem(KEY) ? 'The board refused the stored API token: enter the right one.'
      : 'This board wants its API token (api_token in its settings.json) to ' + what + '.';
    $('tokf').hidden = false;
    $('tok').value = '';
    $('tok').focus();
  }

  function asked(i) {
    const f = then && then[i];
    $('tokf').hidden = true;
    then = null;
    if (f) f();
  }

  $('led').onclick = () => toggle(!led);
  $('tokf').onsubmit = e => {
    e.preventDefault();
    const v = $('tok').value.trim();
    if (v) localStorage.setItem(KEY, v); else localStorage.removeItem(KEY);
    asked(0);
  };
  $('tokno').onclick = () => asked(1);

  // ---- the firmware update: PUT /api/update/firmware, then GET /api/update until the board is back ----

  const BACK_S = 90; // how long the page waits for the board to answer after an update
  let upd = null; // GET /api/update's last answer (null: none yet, or no such route)
  let file = null;

  function say(state, text) {
    $('upd').dataset.state = state;
    $('upmsg').textContent = text;
    $('upfile').disabled = state === 'sending' || state === 'resetting';
    $('upgo').disabled = $('upfile').disabled || !file;
  }

  function size(n) {
    return n < 1048576 ? kb(n) : (n / 1048576).toFixed(2) + ' MB';
  }

  async function slots() {
    const u = await json('/api/update');
    const l = u.last;
    $('upnow').textContent = 'Running ' + u.running + ', version ' + u.version + '; last update: '
      + (l ? l.result + (l.slot ? ' (' + l.slot + ')' : '') + (l.detail ? ': ' + l.detail : '') : 'none');
    return u;
  }

  // asked only when the panel is opened: the board loads its update code for those who want it
  async function opened() {
    if (upd || !$('upd').open) return;
    let why = 'Updates need an OTA partition table (two app slots): this board has none.';
    try {
      upd = await slots();
    } catch (e) {
      why = 'No updates from here: ' + e.message; // a firmware without the route: 404
    }
    const ok = !!(upd && upd.next);
    $('upform').hidden = !ok;
    say(ok ? 'ready' : 'none', ok ? '' : why);
  }

  function what(d) {
    if (d.byteLength < 112 || d.getUint8(0) !== 0xE9) return 'not an ESP-IDF app image';
    const c = d.getUint16(12, true);
    const str = o => new TextDecoder().decode(d.buffer.slice(o, o + 32)).split('\0')[0];
    return 'ESP-IDF app image for ' + ({0: 'ESP32', 2: 'ESP32-S2', 5: 'ESP32-C3', 9: 'ESP32-S3'}[c] || 'chip id ' + c)
      + (d.getUint32(32, true) === 0xABCD5432 ? ', ' + str(80) + ' ' + str(48) : '');
  }

  function progress(n, all) {
    const p = Math.floor(100 * n / all);
    $('upbar').style.width = p + '%';
    $('upprog').textContent = p + ' % · ' + size(n) + ' of ' + size(all);
  }

  function send() {
    const x = new XMLHttpRequest();
    const token = localStorage.getItem(KEY);
    const before = upd;
    x.open('PUT', '/api/update/firmware');
    x.setRequestHeader('Content-Type', 'application/octet-stream');
    if (token) x.setRequestHeader('Authorization', 'Bearer ' + token);
    x.upload.onprogress = e => progress(e.loaded, e.total);
    x.upload.onload = () => say('sending', 'Sent: the board checks it…');
    x.onload = () => {
      if (x.status === 200) return back(JSON.parse(x.responseText), before);
      say('failed', x.responseText.trim() || x.status + ' ' + x.statusText); // "400 Bad Request: why"
      if (x.status === 401) ask('update its firmware', send, () => say('failed', 'Not sent: no token given'));
    };
    x.onerror = () => say('failed', 'Network error: the board did not answer');
    say('sending', 'Sending…');
    x.send(file);
  }

  // the board resets: a board that answers counts as back once it failed to answer in between,
  // or once its running slot or last update has changed; a firmware on trial (last update
  // "pending") is kept once it has served a request, these included: then it says how it went
  async function back(r, before) {
    const t0 = Date.now();
    const text = 'Written to ' + r.slot + ' (' + r.image_version + ', ' + size(r.size)
      + (r.sha256 ? ', SHA-256 ' + r.sha256.slice(0, 12) + '…' : '') + '): the board resets. ';
    let down = false;
    say('resetting', text);
    await sleep((r.resetting_in_ms || 0) + 700);
    while (Date.now() - t0 < BACK_S * 1000) {
      const t1 = Date.now();
      try {
        const u = await slots();
        if ((down || u.running !== before.running || JSON.stringify(u.last) !== JSON.stringify(before.last))
          && !(u.last && u.last.result === 'pending')) {
          upd = u;
          return say(u.running === r.slot ? 'back' : 'failed', 'Back: running ' + u.running + ', version '
            + u.version + '; last update: ' + (u.last ? u.last.result : 'none'));
        }
      } catch (e) {
        down = true;
      }
      say('resetting', text + 'Waiting for it: ' + Math.round((Date.now() - t0) / 1000) + ' s');
      await sleep(1000 - (Date.now() - t1));
    }
    say('failed', 'The board has not answered within ' + BACK_S + ' s');
  }

  $('upfile').onchange = async () => {
    file = $('upfile').files[0];
    say('ready', '');
    $('upbar').style.width = $('upprog').textContent = $('upwhat').textContent = '';
    if (file) $('upwhat').textContent = size(file.size) + ': ' + what(new DataView(await file.slice(0, 112).arrayBuffer()));
  };
  $('upgo').onclick = send;
  $('upd').ontoggle = opened;

  $('retry').onclick = () => {
    fails = 0;
    start(0);
  };

  start(0);
})();
