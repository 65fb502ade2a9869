// The AgentOS web console: a client of the server's /v1 API, nothing more. Every check that
// matters to an auditor is made here, in the browser, not taken from the server: receipts are
// verified with WebCrypto Ed25519 over their signed bytes with the world's public key, and
// inclusion proofs are recomputed (RFC 6962, SHA-256) up to a checkpoint whose signature is
// checked too. Approvers sign verdicts here with a key file they pick; it is read into this
// page only, never sent anywhere. Text that agents wrote is only ever set as text (no HTML).
'use strict';

// ---------- small helpers ----------

const $ = (selector) => document.querySelector(selector);
const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

/** An element: `attrs` are properties (`class`, `text`, `onclick`, `data-*`, ...). */
function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs)) {
    if (value === undefined || value === null || value === false) continue;
    if (name === 'class') node.className = value;
    else if (name === 'text') node.textContent = value;
    else if (name.startsWith('on')) node.addEventListener(name.slice(2), value);
    else if (name.startsWith('data-') || name === 'for' || name === 'aria-label') node.setAttribute(name, value);
    else node[name] = value;
  }
  for (const child of children.flat()) {
    if (child === null || child === undefined || child === false) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}

const hex = {
  decode(text) {
    if (typeof text !== 'string' || text.length % 2 !== 0 || /[^0-9a-fA-F]/.test(text)) throw new Error('not hex');
    const bytes = new Uint8Array(text.length / 2);
    for (let i = 0; i < bytes.length; i++) bytes[i] = parseInt(text.substr(i * 2, 2), 16);
    return bytes;
  },
  encode(bytes) {
    return Array.from(bytes, (b) => b.toString(16).padStart(2, '0')).join('');
  },
};

function concat(...parts) {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const part of parts) { out.set(part, at); at += part.length; }
  return out;
}

function equalBytes(a, b) {
  return a.length === b.length && a.every((byte, i) => byte === b[i]);
}

const short = (text, n = 12) => (text || '').slice(0, n);
const enc = encodeURIComponent;

// ---------- the API ----------

const session = {
  token: sessionStorage.getItem('agentos.token') || '',
  stream: null,
  key: null, // { name, publicKey (hex), private: CryptoKey, file }
};

async function api(path, options = {}) {
  const headers = { Accept: 'application/json' };
  if (session.token) headers.Authorization = 'Bearer ' + session.token;
  const init = { method: options.method || 'GET', headers };
  if (options.body !== undefined) {
    headers['Content-Type'] = 'application/json';
    init.body = JSON.stringify(options.body);
  }
  const response = await fetch('/v1' + path, init);
  const text = await response.text();
  let body;
  try { body = JSON.parse(text); } catch { body = { error: { message: text || response.statusText } }; }
  if (!response.ok) {
    const error = new Error(body.error ? body.error.message : response.statusText);
    error.status = response.status;
    throw error;
  }
  return body;
}

/** Follow a world's journal over Server-Sent Events (read with fetch, so a bearer token can be
 *  sent), resuming after the last entry seen whenever the connection drops. */
function follow(world, after, onEntry, onLive) {
  const controller = new AbortController();
  let last = after;
  (async () => {
    while (!controller.signal.aborted) {
      try {
        const headers = { Accept: 'text/event-stream' };
        if (session.token) headers.Authorization = 'Bearer ' + session.token;
        if (last !== null) headers['Last-Event-ID'] = String(last);
        const response = await fetch(`/v1/worlds/${enc(world)}/stream`, { headers, signal: controller.signal });
        if (!response.ok) throw new Error(`stream: ${response.status}`);
        onLive(true);
        const reader = response.body.getReader();
        const decoder = new TextDecoder();
        let buffer = '';
        for (;;) {
          const { value, done } = await reader.read();
          if (done) break;
          buffer += decoder.decode(value, { stream: true });
          let end;
          while ((end = buffer.indexOf('\n\n')) >= 0) {
            const block = buffer.slice(0, end);
            buffer = buffer.slice(end + 2);
            const data = block.split('\n').filter((l) => l.startsWith('data:')).map((l) => l.slice(5).trimStart()).join('\n');
            if (!data) continue;
            const entry = JSON.parse(data);
            last = entry.seq;
            onEntry(entry);
          }
        }
      } catch (error) {
        if (controller.signal.aborted) return;
      }
      onLive(false);
      await sleep(1000);
    }
  })();
  return controller;
}

// ---------- checks made in the browser ----------

const sha256 = async (bytes) => new Uint8Array(await crypto.subtle.digest('SHA-256', bytes));

async function ed25519Verify(publicKey, message, signature) {
  const key = await crypto.subtle.importKey('raw', publicKey, { name: 'Ed25519' }, false, ['verify']);
  return crypto.subtle.verify({ name: 'Ed25519' }, key, signature, message);
}

/** First 8 bytes of sha256(public key): how receipts and checkpoints name their key. */
async function keyId(publicKey) {
  return hex.encode((await sha256(publicKey)).slice(0, 8));
}

/** The world key the user pinned for world `worldId` (from its operator), if any. */
function pinnedKey(worldId) {
  return localStorage.getItem(`agentos.pin.${worldId}`) || '';
}

/** A receipt checked against the world's key — the pinned one if the user pinned one, else the
 *  genesis key the server reports: `{ ok, why }`. */
async function checkReceipt(receipt, genesisKey, pinned) {
  try {
    if (receipt.key_id !== (await keyId(hex.decode(genesisKey)))) {
      if (pinned) return { ok: false, why: `signed by key ${receipt.key_id}, not by the key you pinned` };
      return { ok: null, why: `signed by key ${receipt.key_id}, not the genesis key (a rotated key): not checked here` };
    }
    const ok = await ed25519Verify(hex.decode(genesisKey), hex.decode(receipt.signed_bytes), hex.decode(receipt.signature));
    return ok ? { ok: true, why: 'Ed25519 signature over its signed bytes checks with the world key' }
      : { ok: false, why: 'its signature does not check over its signed bytes: the receipt was altered or forged' };
  } catch (error) {
    return { ok: false, why: 'cannot be checked: ' + error.message };
  }
}

/** A postcard varint. */
function varint(n) {
  const out = [];
  let value = BigInt(n);
  while (value >= 0x80n) { out.push(Number(value & 0x7fn) | 0x80); value >>= 7n; }
  out.push(Number(value));
  return new Uint8Array(out);
}

/** Read a postcard varint at `at`: [value, next offset]. */
function readVarint(bytes, at) {
  let value = 0n; let shift = 0n;
  for (;;) {
    const byte = bytes[at++];
    if (byte === undefined) throw new Error('truncated');
    value |= BigInt(byte & 0x7f) << shift;
    if ((byte & 0x80) === 0) return [Number(value), at];
    shift += 7n;
  }
}

/** The fields of a checkpoint's signed bytes (`"agentos.checkpoint.v2\0"` ‖ postcard(body)). */
function decodeCheckpoint(bytes) {
  const domain = new TextEncoder().encode('agentos.checkpoint.v2\0');
  if (!equalBytes(bytes.slice(0, domain.length), domain)) throw new Error('not a checkpoint of format v2');
  let at = domain.length;
  const take = (n) => { const part = bytes.slice(at, at + n); if (part.length !== n) throw new Error('truncated'); at += n; return part; };
  const version = take(1)[0];
  const worldId = hex.encode(take(16));
  let entries; [entries, at] = readVarint(bytes, at);
  const entriesRoot = hex.encode(take(32));
  let receipts; [receipts, at] = readVarint(bytes, at);
  const receiptsRoot = hex.encode(take(32));
  take(32); // genesis
  let configuration; [configuration, at] = readVarint(bytes, at);
  take(32); // configuration hash
  const id = hex.encode(take(8));
  return { version, worldId, entries, entriesRoot, receipts, receiptsRoot, configuration, keyId: id };
}

/** The root an RFC 6962 inclusion path leads to from `leafHash` at `index` of `size`. */
async function rootFromPath(index, size, leafHash, path) {
  if (index >= size) return null;
  let fn = index; let sn = size - 1; let r = leafHash;
  for (const sibling of path) {
    if (sn === 0) return null;
    if (fn % 2 === 1 || fn === sn) {
      r = await sha256(concat([1], sibling, r));
      if (fn % 2 === 0) { while (fn % 2 === 0 && fn !== 0) { fn = Math.floor(fn / 2); sn = Math.floor(sn / 2); } }
    } else {
      r = await sha256(concat([1], r, sibling));
    }
    fn = Math.floor(fn / 2); sn = Math.floor(sn / 2);
  }
  return sn === 0 ? r : null;
}

/** A receipt's inclusion proof checked from end to end: the receipt's signature, the path to
 *  the checkpoint's receipt root, and the checkpoint's signature. */
async function checkProof(proof, receiptShown, genesisKey, worldId) {
  const key = hex.decode(genesisKey);
  if (proof.receipt.signed_bytes !== receiptShown.signed_bytes || proof.receipt.signature !== receiptShown.signature) {
    return { ok: false, why: 'the proof is of another receipt than the one shown' };
  }
  const receipt = { key_id: null, signed_bytes: proof.receipt.signed_bytes, signature: proof.receipt.signature };
  const checkpoint = decodeCheckpoint(hex.decode(proof.checkpoint.signed_bytes));
  if (checkpoint.worldId !== worldId) return { ok: false, why: 'the checkpoint is of another world' };
  if (checkpoint.keyId !== (await keyId(key)) || (proof.key_rotations || []).length) {
    return { ok: null, why: 'the checkpoint is signed by a rotated key: check it with `agentos-host verify-proof`' };
  }
  if (!(await ed25519Verify(key, hex.decode(proof.checkpoint.signed_bytes), hex.decode(proof.checkpoint.signature)))) {
    return { ok: false, why: "the checkpoint's signature does not check" };
  }
  receipt.key_id = checkpoint.keyId;
  if (!(await ed25519Verify(key, hex.decode(receipt.signed_bytes), hex.decode(receipt.signature)))) {
    return { ok: false, why: "the receipt's signature does not check" };
  }
  const leaf = await sha256(concat([0], await sha256(hex.decode(receipt.signed_bytes))));
  const root = await rootFromPath(proof.leaf_index, checkpoint.receipts, leaf, proof.audit_path.map(hex.decode));
  if (!root || hex.encode(root) !== checkpoint.receiptsRoot) {
    return { ok: false, why: "the audit path does not lead to the checkpoint's receipt root" };
  }
  return { ok: true, why: `receipt ${proof.leaf_index} of ${checkpoint.receipts} in the checkpoint of ${checkpoint.entries} entries, signed by the world key` };
}

// ---------- signing verdicts in the browser ----------

/** A key file (the 32-byte ed25519 secret `agentos-host keys new` writes) as a signing key. */
async function loadKeyFile(file) {
  const secret = new Uint8Array(await file.arrayBuffer());
  if (secret.length !== 32) throw new Error(`${file.name} holds ${secret.length} bytes, not a 32-byte ed25519 key`);
  // PKCS #8 wrapping of an Ed25519 private key (RFC 8410).
  const pkcs8 = concat(hex.decode('302e020100300506032b657004220420'), secret);
  const key = await crypto.subtle.importKey('pkcs8', pkcs8, { name: 'Ed25519' }, true, ['sign']);
  const jwk = await crypto.subtle.exportKey('jwk', key);
  const publicKey = Uint8Array.from(atob(jwk.x.replace(/-/g, '+').replace(/_/g, '/')), (c) => c.charCodeAt(0));
  const signing = await crypto.subtle.importKey('jwk', { ...jwk, key_ops: ['sign'] }, { name: 'Ed25519' }, false, ['sign']);
  return { publicKey: hex.encode(publicKey), private: signing, file: file.name };
}

/** The documented verdict bytes: `"agentos.verdict.v1\0"` ‖ postcard(VerdictBody). */
function verdictBytes(worldId, proposal, proposalHash, approve, approver, comment) {
  const text = new TextEncoder();
  const string = (s) => { const bytes = text.encode(s); return concat(varint(bytes.length), bytes); };
  return concat(
    text.encode('agentos.verdict.v1\0'),
    [1], hex.decode(worldId), varint(proposal), hex.decode(proposalHash),
    varint(approve ? 0 : 1), string(approver), [0], string(comment),
  );
}

// ---------- pages ----------

const KINDS = ['ingress', 'step-committed', 'step-failed', 'effect-intent', 'effect-receipt', 'output',
  'timer-scheduled', 'timer-cancelled', 'checkpoint', 'snapshot', 'proposal', 'verdict', 'shadow-report',
  'manifest-applied', 'apply-refused', 'plan', 'key-rotation', 'step-attempt', 'genesis'];

function crumbs(...parts) {
  $('#crumbs').replaceChildren(...parts.flatMap((p, i) => [i ? ' / ' : '', p]));
}

function notice(kind, text) {
  return el('div', { class: `notice ${kind}`, role: 'status', text });
}

function failure(error) {
  const text = error.status === 401 ? `${error.message} — paste a token above` : error.message;
  return notice('error', text);
}

async function pageWorlds(main) {
  crumbs(el('span', { text: 'worlds' }));
  const worlds = await api('/worlds');
  main.replaceChildren(
    el('h1', { text: 'Worlds' }),
    el('div', { class: 'cards' }, worlds.map((w) => el('a', { href: `#/w/${enc(w.name)}`, class: 'card', 'data-world': w.name },
      el('h3', { text: w.name }),
      el('div', { class: 'muted' }, `${w.entries} entries`),
      el('div', { class: 'mono muted', text: `world ${short(w.world_id, 16)} · key ${short(w.genesis_public_key, 16)}…` }),
    ))),
  );
}

const TABS = [['timeline', 'Timeline'], ['receipts', 'Receipts'], ['agents', 'Agents'], ['proposals', 'Proposals'],
  ['plans', 'Plans'], ['send', 'Send an event']];

async function pageWorld(main, name, tab, rest) {
  const status = await api(`/worlds/${enc(name)}`);
  crumbs(el('a', { href: '#/', text: 'worlds' }), el('a', { href: `#/w/${enc(name)}`, text: name }));
  const body = el('div', { id: 'tab' });
  main.replaceChildren(
    el('h1', {}, name, ' ', el('span', { class: 'muted mono', text: `world ${short(status.world_id, 16)}` })),
    el('div', { class: 'tabs' }, TABS.map(([id, label]) =>
      el('a', { href: `#/w/${enc(name)}/${id}`, class: id === tab ? 'active' : '', 'data-tab': id, text: label }))),
    body,
  );
  const pages = { timeline, receipts, agents, proposals, plans, send };
  await (pages[tab] || timeline)(body, name, status, rest);
}

async function timeline(body, name, status) {
  const rows = el('tbody', { id: 'timeline' });
  const agent = el('select', { id: 'filter-agent', 'aria-label': 'agent' }, el('option', { value: '', text: 'every agent' }),
    [...status.agents, ...status.plans.map((p) => `plan:${p}`)].map((a) => el('option', { value: a, text: a })));
  const kind = el('select', { id: 'filter-kind', 'aria-label': 'kind' }, el('option', { value: '', text: 'every kind' }),
    KINDS.map((k) => el('option', { value: k, text: k })));
  const search = el('input', { id: 'filter-text', placeholder: 'text contains…', 'aria-label': 'text' });
  const live = el('span', { class: 'live' }, el('span', { class: 'dot', id: 'live-dot' }), el('span', { id: 'live-text', text: 'connecting' }));
  const visible = (tr) => (!agent.value || tr.dataset.agent === agent.value) && (!kind.value || tr.dataset.kind === kind.value)
    && (!search.value || tr.textContent.toLowerCase().includes(search.value.toLowerCase()));
  const refilter = () => rows.querySelectorAll('tr').forEach((tr) => { tr.hidden = !visible(tr); });
  [agent, kind].forEach((s) => s.addEventListener('change', refilter));
  search.addEventListener('input', refilter);
  const row = (entry, fresh) => {
    const tr = el('tr', { 'data-seq': entry.seq, 'data-kind': entry.kind, 'data-agent': entry.agent || '', class: fresh ? 'fresh' : '' },
      el('td', { class: 'seq', text: `#${entry.seq}` }),
      el('td', {}, el('span', { class: `badge k-${entry.kind}`, text: entry.kind })),
      el('td', { text: entry.agent || '' }),
      el('td', { class: 'text', text: entry.text }));
    tr.hidden = !visible(tr);
    return tr;
  };
  body.replaceChildren(
    el('div', { class: 'toolbar' }, agent, kind, search, live, el('span', { class: 'muted', id: 'count' })),
    el('table', {}, el('thead', {}, el('tr', {}, el('th', { text: '#' }), el('th', { text: 'kind' }), el('th', { text: 'agent' }), el('th', { text: 'entry' }))), rows),
  );
  const SHOWN = 500;
  const after = status.entries > SHOWN ? status.entries - SHOWN - 1 : null;
  let last = after;
  for (;;) {
    const page = await api(`/worlds/${enc(name)}/entries?limit=1000${last === null ? '' : `&after=${last}`}`);
    for (const entry of page.entries) { rows.prepend(row(entry, false)); last = entry.seq; }
    if (page.next_after === null || page.next_after === undefined) break;
    last = page.next_after;
  }
  const count = () => { $('#count') && ($('#count').textContent = `${rows.children.length} entries shown`); };
  count();
  session.stream = follow(name, last, (entry) => {
    if (rows.querySelector(`tr[data-seq="${entry.seq}"]`)) return;
    rows.prepend(row(entry, true));
    count();
  }, (on) => {
    const dot = $('#live-dot'); const text = $('#live-text');
    if (dot) dot.classList.toggle('on', on);
    if (text) text.textContent = on ? 'live' : 'reconnecting';
  });
}

async function receipts(body, name, status) {
  const rows = el('tbody', { id: 'receipts' });
  const pinned = pinnedKey(status.world_id);
  const key = pinned || status.genesis_public_key;
  const pinInput = el('input', { id: 'pinned-key', value: pinned, placeholder: "the world's public key, from its operator", 'aria-label': 'world key', size: 66 });
  const pinForm = el('form', { class: 'toolbar', onsubmit: (event) => {
    event.preventDefault();
    const value = pinInput.value.trim().toLowerCase();
    if (value) localStorage.setItem(`agentos.pin.${status.world_id}`, value);
    else localStorage.removeItem(`agentos.pin.${status.world_id}`);
    receipts(body, name, status);
  } }, el('label', { for: 'pinned-key', text: 'World key you trust:' }), pinInput, el('button', { type: 'submit', id: 'pin', text: 'pin' }));
  const anchor = pinned
    ? (pinned === status.genesis_public_key
      ? notice('success', `Checked against the key you pinned, ${short(pinned, 16)}…, which is the key this server reports.`)
      : notice('error', `Checked against the key you pinned, ${short(pinned, 16)}…; this server reports another one, ${short(status.genesis_public_key, 16)}….`))
    : notice('', `Checked against the key this server reports, ${short(status.genesis_public_key, 16)}…: that shows the journal is self-consistent, not that it is this world's. Pin the key its operator gave you to anchor the checks.`);
  body.replaceChildren(
    el('p', { class: 'muted', text: 'Each receipt\'s signature is checked in this browser over its signed bytes; "prove" fetches its inclusion proof and recomputes it up to a signed checkpoint. The other columns are what the server says the receipt holds.' }),
    pinForm, anchor,
    el('table', {}, el('thead', {}, el('tr', {}, ['#', 'agent', 'effect', 'subject', 'status', 'signature', 'proof'].map((h) => el('th', { text: h })))), rows),
  );
  let after = null; const all = [];
  for (;;) {
    const page = await api(`/worlds/${enc(name)}/receipts?limit=1000${after === null ? '' : `&after=${after}`}`);
    all.push(...page.receipts);
    if (page.next_after === null || page.next_after === undefined) break;
    after = page.next_after;
  }
  if (!all.length) rows.append(el('tr', {}, el('td', { colSpan: 7, class: 'muted', text: 'no receipts yet' })));
  for (const receipt of all) {
    const check = el('td', { class: 'check pending', text: 'checking…' });
    const proofCell = el('td', {});
    const prove = el('button', { text: 'prove', onclick: async () => {
      prove.disabled = true;
      proofCell.replaceChildren(el('span', { class: 'pending', text: 'checking…' }));
      try {
        const proof = await api(`/worlds/${enc(name)}/proofs/entries/${receipt.seq}`);
        const result = await checkProof(proof, receipt, key, status.world_id);
        proofCell.replaceChildren(el('span', { class: result.ok ? 'ok' : result.ok === null ? 'pending' : 'fail', title: result.why,
          text: result.ok ? 'included' : result.ok === null ? 'not checked' : 'proof fails' }), ' ', el('span', { class: 'muted', text: result.why }));
      } catch (error) {
        proofCell.replaceChildren(failure(error));
      }
      prove.disabled = false;
    } });
    proofCell.append(prove);
    rows.append(el('tr', { 'data-seq': receipt.seq },
      el('td', { class: 'seq', text: `#${receipt.seq}` }), el('td', { text: receipt.agent }),
      el('td', {}, el('span', { class: 'badge', text: receipt.effect })), el('td', { class: 'text', text: receipt.subject }),
      el('td', { text: receipt.status }), check, proofCell));
    checkReceipt(receipt, key, pinned).then((result) => {
      check.className = `check ${result.ok ? 'ok' : result.ok === null ? 'pending' : 'fail'}`;
      check.textContent = result.ok ? '✓ verified' : result.ok === null ? 'not checked' : '✗ signature fails';
      check.title = result.why;
    });
  }
}

async function agents(body, name) {
  const list = await api(`/worlds/${enc(name)}/agents`);
  const use = (u) => u.limit === null || u.limit === undefined ? `${u.used}`
    : el('span', {}, el('span', { class: 'bar' }, el('span', { style: `width:${Math.min(100, (100 * u.used) / Math.max(1, u.limit))}%` })), ` ${u.used} / ${u.limit}`);
  body.replaceChildren(el('div', { class: 'cards' }, list.map((a) => el('div', { class: 'card', 'data-agent': a.name },
    el('h3', {}, a.name, ' ', el('span', { class: 'muted', text: `module ${a.module}` })),
    el('div', {}, a.busy ? el('span', { class: 'pending', text: 'stepping' }) : el('span', { class: 'muted', text: 'idle' }), ` · ${a.queued} queued`),
    el('div', { class: 'mono muted', text: `state sha256:${short(a.state_digest, 24)}…` }),
    el('div', {}, 'grants: ', a.grants.length ? a.grants.map((g) => el('span', { class: 'badge', text: g })) : el('span', { class: 'muted', text: 'none' })),
    a.budgets.length ? el('table', {}, el('tbody', {}, a.budgets.map((b) => el('tr', {},
      el('td', { text: b.grant }), el('td', {}, 'calls ', use(b.calls)), el('td', {}, 'bytes ', use(b.bytes)), el('td', {}, 'tokens ', use(b.tokens)),
      el('td', { class: 'muted', text: b.window_ms ? `per ${b.window_ms} ms` : 'in all' }))))) : null,
  ))));
}

function diffLines(lines) {
  return el('div', { class: 'diff' }, lines.map((line) => {
    const kind = line.startsWith('@@') ? 'hunk' : line.startsWith('+') ? 'add' : line.startsWith('-') ? 'del' : line.startsWith('~') ? 'chg' : '';
    return el('div', { class: kind, text: line });
  }));
}

async function proposals(body, name, status, rest) {
  if (rest) return proposal(body, name, status, Number(rest));
  const { proposals: list, manifests } = await api(`/worlds/${enc(name)}/proposals`);
  body.replaceChildren(
    list.length ? el('table', {}, el('thead', {}, el('tr', {}, ['#', 'status', 'author', 'description', 'changes'].map((h) => el('th', { text: h })))),
      el('tbody', {}, list.slice().reverse().map((p) => el('tr', { 'data-proposal': p.proposal },
        el('td', { class: 'seq' }, el('a', { href: `#/w/${enc(name)}/proposals/${p.proposal}`, text: `#${p.proposal}` })),
        el('td', {}, el('span', { class: `badge ${p.status === 'applied' ? 'ok' : p.status === 'rejected' ? 'fail' : 'pending'}`, text: p.status })),
        el('td', { text: p.author }), el('td', { text: p.description }), el('td', { class: 'text', text: p.changes.join('; ') })))))
      : el('p', { class: 'muted', text: 'no proposals' }),
    el('h2', { text: 'Manifests the world has run' }),
    el('table', {}, el('tbody', {}, manifests.map((m) => el('tr', {},
      el('td', { class: 'seq', text: `#${m.since}` }), el('td', { class: 'mono', text: `sha256:${m.manifest}` }),
      el('td', { text: m.proposal === null ? 'genesis' : `proposal #${m.proposal}` }))))),
  );
}

async function proposal(body, name, status, seq) {
  const [p, policy] = await Promise.all([api(`/worlds/${enc(name)}/proposals/${seq}`), api(`/worlds/${enc(name)}/policy`)]);
  const messages = el('div', { id: 'messages' });
  const keyState = el('span', { id: 'key-state', class: 'muted', text: session.key ? `key: ${session.key.name} (${session.key.file})` : 'no key loaded' });
  const fileInput = el('input', { type: 'file', id: 'key-file', 'aria-label': 'key file' });
  const comment = el('input', { id: 'comment', placeholder: 'comment (optional)', 'aria-label': 'comment' });
  const approveButton = el('button', { id: 'approve', class: 'good', text: 'Approve (sign here)' });
  const rejectButton = el('button', { id: 'reject', class: 'bad', text: 'Reject (sign here)' });
  const applyButton = el('button', { id: 'apply', class: 'primary', text: 'Apply' });
  const shadowButton = el('button', { id: 'shadow', text: 'Shadow-run the last 100 steps' });
  const open = p.status === 'open';
  const canSign = () => open && session.key && session.key.name;
  const refresh = () => {
    approveButton.disabled = rejectButton.disabled = !canSign();
    applyButton.disabled = !(open && (p.blockers || []).length === 0);
  };
  fileInput.addEventListener('change', async () => {
    messages.replaceChildren();
    try {
      const loaded = await loadKeyFile(fileInput.files[0]);
      const approver = policy.approvers.find((a) => a.key.toLowerCase() === loaded.publicKey);
      session.key = { ...loaded, name: approver ? approver.name : null };
      keyState.textContent = approver ? `key: ${approver.name} (${loaded.file}, public ${short(loaded.publicKey, 16)}…)`
        : `${loaded.file} (public ${short(loaded.publicKey, 16)}…) is not an approver in the policy in force`;
      keyState.className = approver ? 'ok' : 'fail';
    } catch (error) {
      session.key = null;
      keyState.textContent = error.message;
      keyState.className = 'fail';
    }
    refresh();
  });
  const judge = async (approve) => {
    messages.replaceChildren();
    try {
      const bytes = verdictBytes(p.world_id, seq, p.hash, approve, session.key.name, comment.value);
      const signature = new Uint8Array(await crypto.subtle.sign({ name: 'Ed25519' }, session.key.private, bytes));
      const judged = await api(`/worlds/${enc(name)}/proposals/${seq}/verdicts`, { method: 'POST', body: {
        verdict: approve ? 'approve' : 'reject', approver: session.key.name, comment: comment.value,
        world_id: p.world_id, proposal_hash: p.hash, public_key: session.key.publicKey, signature: hex.encode(signature) } });
      const ready = judged.blockers.length === 0;
      const done = notice('success', `${approve ? 'approved' : 'rejected'} by ${judged.approver} (entry #${judged.entry}); ${ready ? 'ready to apply' : 'still needs: ' + judged.blockers.join('; ')}`);
      await proposal(body, name, status, seq);
      $('#messages').append(done);
    } catch (error) {
      messages.append(failure(error));
    }
  };
  shadowButton.addEventListener('click', async () => {
    messages.replaceChildren();
    shadowButton.disabled = true;
    shadowButton.textContent = 'Shadow run under way…';
    try {
      const shadowed = await api(`/worlds/${enc(name)}/proposals/${seq}/shadow`, { method: 'POST', body: {} });
      const done = notice(shadowed.report.clean ? 'success' : 'error', `shadow run journaled (entry #${shadowed.entry}): ${shadowed.report.clean ? 'clean' : 'NOT CLEAN'} · ${shadowed.report.summary}`);
      await proposal(body, name, status, seq);
      $('#messages').append(done);
    } catch (error) {
      shadowButton.disabled = false;
      shadowButton.textContent = 'Shadow-run the last 100 steps';
      messages.append(failure(error));
    }
  });
  approveButton.addEventListener('click', () => judge(true));
  rejectButton.addEventListener('click', () => judge(false));
  applyButton.addEventListener('click', async () => {
    messages.replaceChildren();
    try {
      const applied = await api(`/worlds/${enc(name)}/proposals/${seq}/apply`, { method: 'POST', body: {} });
      const done = notice('success', `applied (entry #${applied.entry}): manifest sha256:${short(applied.manifest, 16)}… is in force`);
      await proposal(body, name, status, seq);
      $('#messages').append(done);
    } catch (error) {
      messages.append(failure(error));
    }
  });
  const report = (r) => r ? el('div', { class: 'card' },
    el('div', {}, el('span', { class: r.clean ? 'ok' : 'fail', text: r.clean ? 'clean' : 'NOT CLEAN' }), ` · ${r.workload || ''}`),
    el('div', { class: 'muted', text: r.summary || '' }),
    (r.steps || []).length ? el('table', {}, el('tbody', {}, r.steps.map((s) => el('tr', {},
      el('td', { text: s.label }), el('td', { text: s.agent }), el('td', { class: 'text', text: s.event }),
      el('td', { class: 'text', text: (s.differences || []).length ? s.differences.join('; ') : 'same' }))))) : null,
  ) : null;
  const approved = (p.approved_by || []).length;
  body.replaceChildren(
    el('h2', {}, `Proposal #${seq} `, el('span', { class: `badge ${p.status === 'applied' ? 'ok' : p.status === 'rejected' ? 'fail' : 'pending'}`, id: 'proposal-status', text: p.status })),
    el('p', { id: 'author' }, el('b', { text: p.author }),
      p.agent_authored ? ' (an agent of the world)' : el('span', { class: 'mono muted', text: ` (key ${short(p.author_key, 16)}…)` }),
      ': ', p.description || el('span', { class: 'muted', text: 'no description' })),
    messages,
    el('div', { class: 'grid2' },
      el('div', {}, el('h2', { text: 'What it changes' }), diffLines(p.changes),
        el('h2', { text: 'world.toml, before and after' }),
        (p.diff || []).length ? el('div', { id: 'manifest-diff' }, diffLines(p.diff))
          : el('p', { class: 'muted', text: p.diff ? 'no difference in the manifest text' : 'too large to compare here: see the patch' }),
        el('details', {}, el('summary', { text: 'The patch (AIR, JSON)' }), el('pre', { text: JSON.stringify(p.patch, null, 2) }))),
      el('div', {},
        el('h2', { text: 'Approvals' }),
        el('div', { id: 'quorum' }, `${approved} of ${policy.quorum} needed`, policy.require_clean_shadow ? ' · a clean shadow run is required' : ''),
        el('ul', {}, p.verdicts.map((v) => el('li', {}, el('span', { class: v.verdict === 'approved' ? 'ok' : 'fail', text: v.verdict }), ` by ${v.approver} (#${v.entry})${v.comment ? ': ' + v.comment : ''}`))),
        (p.blockers || []).length ? el('div', { class: 'notice', id: 'blockers' }, 'Not ready to apply:', el('ul', {}, p.blockers.map((b) => el('li', { text: b })))) : null,
        open ? el('div', { class: 'card' },
          el('div', {}, el('label', { for: 'key-file', text: 'Your key file (read here, never uploaded): ' }), fileInput),
          el('div', {}, keyState), el('div', { class: 'toolbar' }, comment, approveButton, rejectButton, applyButton)) : null,
        el('h2', {}, 'Shadow runs ', open ? shadowButton : null),
        p.shadow_runs.length ? p.shadow_runs.map((s, i) => report(p.shadow_reports[i] || s)) : el('p', { class: 'muted', text: 'none yet' }),
      )),
  );
  refresh();
}

async function plans(body, name) {
  const [list, runs] = await Promise.all([api(`/worlds/${enc(name)}/plans`), api(`/worlds/${enc(name)}/plans/runs`)]);
  body.replaceChildren(
    list.length ? el('div', { class: 'cards' }, list.map((p) => el('div', { class: 'card' },
      el('h3', { text: p.plan }), el('div', { class: 'muted', text: p.trigger }),
      el('div', { class: 'mono', text: (p.steps || []).join(' → ') }), el('div', { text: `${p.runs} run(s)` })))) : el('p', { class: 'muted', text: 'no plans' }),
    el('h2', { text: 'Runs' }),
    runs.length ? el('table', {}, el('tbody', {}, runs.slice().reverse().map((r) => el('tr', { 'data-run': r.run },
      el('td', { class: 'seq', text: `#${r.run}` }), el('td', { text: r.plan }),
      el('td', {}, el('span', { class: r.status === 'completed' ? 'ok' : r.status === 'failed' ? 'fail' : 'pending', text: r.status })),
      el('td', {}, el('div', { class: 'steps' }, r.steps.map((s) => el('span', { class: `step ${s.status}`, title: s.detail || '',
        text: `${s.step}: ${s.status}${s.attempts > 1 ? ` ×${s.attempts}` : ''}` })))))))) : el('p', { class: 'muted', text: 'no runs yet' }),
  );
}

async function send(body, name, status) {
  const agent = el('select', { id: 'send-agent', 'aria-label': 'agent' }, [...status.agents, ...status.plans.map((p) => `plan:${p}`)].map((a) => el('option', { value: a, text: a })));
  const syntax = el('select', { id: 'send-syntax', 'aria-label': 'syntax' }, el('option', { value: 'wave', text: 'WAVE' }), el('option', { value: 'json', text: 'JSON' }));
  const text = el('textarea', { id: 'send-event', placeholder: 'increment(5)   or, as JSON, {"increment": 5}', 'aria-label': 'event' });
  const wait = el('input', { type: 'checkbox', id: 'send-wait', checked: true });
  const result = el('div', { id: 'send-result' });
  const form = el('form', { class: 'card', onsubmit: async (event) => {
    event.preventDefault();
    result.replaceChildren();
    try {
      const payload = { agent: agent.value };
      if (syntax.value === 'json') payload.event = JSON.parse(text.value); else payload.wave = text.value;
      const accepted = await api(`/worlds/${enc(name)}/events${wait.checked ? '?wait=step' : ''}`, { method: 'POST', body: payload });
      const step = accepted.step;
      result.append(notice(step && step.outcome === 'failed' ? 'error' : 'success',
        `journaled as entry #${accepted.entry}` + (step ? `; step #${step.entry} ${step.outcome}${step.reason ? ': ' + step.reason : ''}` : '')));
    } catch (error) {
      result.append(failure(error));
    }
  } },
  el('div', { class: 'toolbar' }, el('label', { text: 'to ' }), agent, syntax,
    el('label', {}, wait, ' wait for the step')), text, el('div', { class: 'toolbar' }, el('button', { class: 'primary', type: 'submit', id: 'send-button', text: 'Send' })));
  body.replaceChildren(form, result);
}

// ---------- routing ----------

async function render() {
  if (session.stream) { session.stream.abort(); session.stream = null; }
  const main = $('#main');
  const [, route, name, tab, rest] = (location.hash.replace(/^#/, '') || '/').split('/');
  try {
    if (route === 'w' && name) await pageWorld(main, decodeURIComponent(name), tab || 'timeline', rest);
    else await pageWorlds(main);
  } catch (error) {
    main.replaceChildren(failure(error));
  }
}

document.addEventListener('DOMContentLoaded', () => {
  $('#token').value = session.token;
  $('#token-form').addEventListener('submit', (event) => {
    event.preventDefault();
    session.token = $('#token').value.trim();
    sessionStorage.setItem('agentos.token', session.token);
    render();
  });
  window.addEventListener('hashchange', render);
  render();
});
