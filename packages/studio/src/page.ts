/**
 * The studio's page: one HTML shell, one script, one stylesheet, served from memory. The script builds every
 * element with createElement and sets text with textContent, never innerHTML: prompts and completions are
 * shown as text whatever they contain. The server's CSP forbids inline script as a second line of defence.
 */
export const PAGE_HTML = `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>rlhf label</title>
<link rel="stylesheet" href="/app.css">
</head>
<body>
<header><strong>rlhf label</strong> <span id="who"></span> <nav id="nav"></nav></header>
<div id="status" role="status" aria-live="polite"></div>
<main id="main"></main>
<script src="/app.js"></script>
</body>
</html>
`;

export const PAGE_CSS = `
body { font: 15px/1.45 system-ui, sans-serif; margin: 0; color: #1d232a; background: #f6f7f9; }
header { background: #22313f; color: #fff; padding: 10px 18px; display: flex; gap: 16px; align-items: center; }
header nav a { color: #cfe3ff; margin-right: 12px; }
main { max-width: 920px; margin: 18px auto; padding: 0 18px; }
#status { max-width: 920px; margin: 10px auto 0; padding: 0 18px; min-height: 1.5em; }
#status.error { color: #a4000f; font-weight: 600; }
#status.ok { color: #146c2e; font-weight: 600; }
.box { background: #fff; border: 1px solid #d5dae0; border-radius: 6px; padding: 12px 14px; margin: 10px 0; }
.text { white-space: pre-wrap; word-break: break-word; }
textarea { width: 100%; min-height: 110px; font: inherit; box-sizing: border-box; }
input[type=text], input[type=password], input[type=number], select { font: inherit; padding: 3px 6px; }
button { font: inherit; padding: 4px 12px; cursor: pointer; }
ol.ranking { list-style: none; padding: 0; }
ol.ranking li { display: flex; gap: 10px; align-items: flex-start; cursor: grab; }
ol.ranking li.dragging { opacity: 0.4; }
ol.ranking li .pos { font-weight: 700; min-width: 2.2em; }
ol.ranking li .body { flex: 1; }
ol.ranking li.tied { margin-top: -6px; border-top: 3px dashed #7a9cc6; }
table { border-collapse: collapse; background: #fff; }
td, th { border: 1px solid #d5dae0; padding: 4px 10px; text-align: left; }
.token { font-family: monospace; background: #fff7d6; padding: 2px 6px; }
.muted { color: #66707a; }
`;

export const PAGE_JS = String.raw`'use strict';
(function () {
  var main = document.getElementById('main');
  var statusEl = document.getElementById('status');
  var LETTERS = 'ABCDEFGHI';

  function el(tag, attrs, children) {
    var e = document.createElement(tag);
    if (attrs) for (var k in attrs) {
      if (k === 'text') e.textContent = attrs[k];
      else if (k === 'on') for (var ev in attrs.on) e.addEventListener(ev, attrs.on[ev]);
      else e.setAttribute(k, attrs[k]);
    }
    (children || []).forEach(function (c) { if (c) e.appendChild(typeof c === 'string' ? document.createTextNode(c) : c); });
    return e;
  }
  function setStatus(msg, kind) { statusEl.textContent = msg; statusEl.className = kind || ''; }
  function token() { return sessionStorage.getItem('rlhf-token'); }

  // Every call reports failures on the page; the server's message is meant for people.
  function api(method, path, body, raw) {
    var opts = { method: method, headers: { authorization: 'Bearer ' + token() } };
    if (body !== undefined) {
      if (raw) opts.body = body; else { opts.body = JSON.stringify(body); opts.headers['content-type'] = 'application/json'; }
    }
    return fetch(path, opts).then(function (res) {
      var ct = res.headers.get('content-type') || '';
      var p = ct.indexOf('application/json') === 0 ? res.json() : res.text();
      return p.then(function (data) {
        if (!res.ok) {
          if (res.status === 401) { sessionStorage.removeItem('rlhf-token'); }
          throw new Error((data && data.error) || ('the server answered ' + res.status));
        }
        return data;
      });
    }, function () { throw new Error('the server cannot be reached: nothing was saved; try again'); });
  }
  function fail(err) { setStatus(err.message, 'error'); }

  function nav(me) {
    var n = document.getElementById('nav');
    n.textContent = '';
    document.getElementById('who').textContent = me ? 'signed in as ' + me.name : '';
    if (!me) return;
    n.appendChild(el('a', { href: '#queue', text: 'My queue' }));
    if (me.admin) n.appendChild(el('a', { href: '#admin', text: 'Admin' }));
    n.appendChild(el('a', { href: '#logout', id: 'logout', text: 'Sign out' }));
  }

  function login(main) {
    nav(null);
    var input = el('input', { type: 'password', id: 'token', autocomplete: 'off', size: '40' });
    var form = el('form', { id: 'login', on: { submit: function (e) {
      e.preventDefault();
      sessionStorage.setItem('rlhf-token', input.value.trim());
      api('GET', '/api/me').then(function (me) {
        setStatus('', '');
        var target = me.admin ? '#admin' : '#queue';
        // Setting the hash routes (hashchange); only an unchanged hash needs a direct call.
        if (location.hash === target) route(); else location.hash = target;
      }, fail);
    } } }, [el('label', { for: 'token', text: 'Your token ' }), input, ' ', el('button', { type: 'submit', text: 'Sign in' })]);
    main.appendChild(el('div', { class: 'box' }, [el('h2', { text: 'Sign in' }), form]));
  }

  function queue(main) {
    api('GET', '/api/queue').then(function (q) {
      main.appendChild(el('h2', { text: 'My queue (' + q.items.length + ')' }));
      if (!q.items.length) main.appendChild(el('p', { class: 'muted', id: 'empty', text: 'Nothing left to label. Thank you!' }));
      var list = el('ul', { id: 'queue' });
      q.items.forEach(function (it) {
        list.appendChild(el('li', { class: 'box', 'data-item': String(it.id) }, [
          el('a', { href: '#item/' + it.id, text: '#' + it.id + ' ' + it.title }),
          it.prompt !== null ? el('div', { class: 'text muted', text: it.prompt.length > 160 ? it.prompt.slice(0, 160) + '…' : it.prompt }) : null,
        ]));
      });
      main.appendChild(list);
    }, fail);
  }

  function textArea(id, label, value) {
    var t = el('textarea', { id: id, maxlength: '20000' });
    if (value) t.value = value;
    return { input: t, node: el('div', {}, [el('label', { for: id, text: label }), t]) };
  }

  function rankingEditor(item) {
    var ol = el('ol', { class: 'ranking', id: 'ranking' });
    var dragged = null;
    function refresh() {
      Array.prototype.forEach.call(ol.children, function (li, i) {
        var tie = li.querySelector('input.tie');
        if (i === 0) tie.checked = false;
        tie.disabled = i === 0;
        li.classList.toggle('tied', tie.checked);
        var pos = 1, tiers = 0;
        for (var j = 0; j <= i; j++) if (j === 0 || !ol.children[j].querySelector('input.tie').checked) tiers++;
        pos = tiers;
        li.querySelector('.pos').textContent = pos + '.';
      });
    }
    item.completions.forEach(function (c, i) {
      var li = el('li', { class: 'box', draggable: 'true', 'data-index': String(i) }, [
        el('span', { class: 'pos' }),
        el('div', { class: 'body' }, [el('div', { class: 'muted', text: 'Completion ' + LETTERS[i] }), el('div', { class: 'text', text: c })]),
        el('div', {}, [
          el('button', { type: 'button', class: 'up', title: 'move up', text: '↑', on: { click: function () { if (li.previousElementSibling) ol.insertBefore(li, li.previousElementSibling); refresh(); } } }),
          el('button', { type: 'button', class: 'down', title: 'move down', text: '↓', on: { click: function () { if (li.nextElementSibling) ol.insertBefore(li.nextElementSibling, li); refresh(); } } }),
          el('label', {}, [el('input', { type: 'checkbox', class: 'tie', on: { change: refresh } }), ' tie with the one above']),
        ]),
      ]);
      li.addEventListener('dragstart', function (e) { dragged = li; li.classList.add('dragging'); e.dataTransfer.effectAllowed = 'move'; e.dataTransfer.setData('text/plain', String(i)); });
      li.addEventListener('dragend', function () { li.classList.remove('dragging'); dragged = null; refresh(); });
      li.addEventListener('dragover', function (e) { e.preventDefault(); });
      li.addEventListener('drop', function (e) {
        e.preventDefault();
        if (!dragged || dragged === li) return;
        var r = li.getBoundingClientRect();
        ol.insertBefore(dragged, e.clientY > r.top + r.height / 2 ? li.nextElementSibling : li);
        refresh();
      });
      ol.appendChild(li);
    });
    refresh();
    return { node: ol, value: function () {
      var tiers = [];
      Array.prototype.forEach.call(ol.children, function (li, i) {
        var idx = Number(li.getAttribute('data-index'));
        if (i > 0 && li.querySelector('input.tie').checked) tiers[tiers.length - 1].push(idx); else tiers.push([idx]);
      });
      return { ranking: tiers };
    } };
  }

  function itemView(main, id) {
    api('GET', '/api/items/' + id).then(function (item) {
      main.appendChild(el('h2', { text: '#' + item.id + ' ' + item.title }));
      if (item.prompt !== null) main.appendChild(el('div', { class: 'box' }, [el('div', { class: 'muted', text: 'Prompt' }), el('div', { class: 'text', id: 'prompt', text: item.prompt })]));
      var collect;
      var form = el('form', { id: 'task' });
      if (item.task === 'prompt_response' || item.task === 'prompt') {
        var p = textArea('prompt-input', 'Prompt');
        form.appendChild(p.node);
        if (item.task === 'prompt_response') {
          var r0 = textArea('response', 'Ideal response');
          form.appendChild(r0.node);
          collect = function () { return { prompt: p.input.value, response: r0.input.value }; };
        } else collect = function () { return { prompt: p.input.value }; };
      } else if (item.task === 'response') {
        var r1 = textArea('response', 'Ideal response');
        form.appendChild(r1.node);
        collect = function () { return { response: r1.input.value }; };
      } else if (item.task === 'rewrite') {
        form.appendChild(el('div', { class: 'box' }, [el('div', { class: 'muted', text: 'Completion' }), el('div', { class: 'text', text: item.completions[0] })]));
        var r2 = textArea('rewrite', 'Your better version', item.completions[0]);
        form.appendChild(r2.node);
        collect = function () { return { rewrite: r2.input.value }; };
      } else if (item.task === 'ranking') {
        form.appendChild(el('p', { class: 'muted', text: 'Drag the completions (or use ↑ ↓) into order, best first. Tick "tie" for one as good as the one above.' }));
        var ed = rankingEditor(item);
        form.appendChild(ed.node);
        collect = ed.value;
      } else if (item.task === 'pairwise') {
        item.completions.forEach(function (c, i) {
          form.appendChild(el('div', { class: 'box' }, [
            el('label', {}, [el('input', { type: 'radio', name: 'choice', value: String(i), id: 'choice-' + i }), ' ' + LETTERS[i] + ' is better']),
            el('div', { class: 'text', text: c }),
          ]));
        });
        var why = textArea('reason', 'Why?');
        form.appendChild(why.node);
        collect = function () {
          var c = form.querySelector('input[name=choice]:checked');
          return { choice: c ? Number(c.value) : null, reason: why.input.value };
        };
      } else if (item.task === 'likert') {
        var selects = item.completions.map(function (c, i) {
          var s = el('select', { class: 'likert', 'data-index': String(i) }, [el('option', { value: '', text: '–' })]);
          for (var v = 1; v <= 7; v++) s.appendChild(el('option', { value: String(v), text: String(v) }));
          form.appendChild(el('div', { class: 'box' }, [el('div', { class: 'text', text: c }), el('label', {}, ['Rating of ' + LETTERS[i] + ' (1 poor – 7 excellent) ', s])]));
          return s;
        });
        collect = function () { return { scores: selects.map(function (s) { return s.value === '' ? null : Number(s.value); }) }; };
      }
      var btn = el('button', { type: 'submit', id: 'submit', text: 'Submit' });
      form.appendChild(el('p', {}, [btn]));
      form.addEventListener('submit', function (e) {
        e.preventDefault();
        btn.disabled = true;
        setStatus('Saving…', '');
        api('POST', '/api/items/' + item.id + '/submit', collect()).then(function () {
          setStatus('Saved #' + item.id + '.', 'ok');
          location.hash = '#queue';
        }, function (err) { btn.disabled = false; fail(err); });
      });
      main.appendChild(form);
    }, fail);
  }

  function table(head, rows, id) {
    var t = el('table', { id: id }, [el('tr', {}, head.map(function (h) { return el('th', { text: h }); }))]);
    rows.forEach(function (r) { t.appendChild(el('tr', {}, r.map(function (c) { return el('td', { text: String(c) }); }))); });
    return t;
  }

  function admin(main) {
    api('GET', '/api/admin/overview').then(function (o) {
      main.appendChild(el('h2', { text: 'Project: ' + o.items + ' items, ' + o.submissions + ' submissions' }));
      main.appendChild(el('h3', { text: 'Progress' }));
      main.appendChild(table(['Labeler', 'Assigned', 'Done'], o.progress.map(function (p) { return [p.labeler, p.assigned, p.done]; }), 'progress'));
      main.appendChild(el('h3', { text: 'Agreement' }));
      var a = o.agreement;
      main.appendChild(el('p', { id: 'agreement', text: 'Mean Kendall tau-b (rankings, ratings): ' + (a.meanTau === null ? 'n/a' : a.meanTau.toFixed(3)) + ' · same choice (pairwise): ' + (a.pairwiseSameChoice === null ? 'n/a' : (100 * a.pairwiseSameChoice).toFixed(0) + '%') }));
      if (a.items.length) main.appendChild(table(['Item', 'Task', 'Labelers', 'Agreement'], a.items.map(function (i) { return ['#' + i.item, i.task, i.labelers.join(', '), i.value === null ? 'n/a' : i.value.toFixed(3)]; }), 'agreement-items'));

      main.appendChild(el('h3', { text: 'Labelers' }));
      var name = el('input', { type: 'text', id: 'new-labeler', placeholder: 'name' });
      var out = el('div', { id: 'new-token' });
      main.appendChild(el('form', { class: 'box', on: { submit: function (e) {
        e.preventDefault();
        api('POST', '/api/admin/labelers', { name: name.value }).then(function (r) {
          out.textContent = '';
          out.appendChild(el('span', { text: 'Token for ' + r.name + ' (shown once): ' }));
          out.appendChild(el('span', { class: 'token', text: r.token }));
          setStatus('Labeler ' + r.name + ' created.', 'ok');
        }, fail);
      } } }, [name, ' ', el('button', { type: 'submit', text: 'Create labeler' }), out]));

      function taskSelect(id, withPrompt) {
        var s = el('select', { id: id });
        o.tasks.forEach(function (t) { if (t.needsPrompt === withPrompt) s.appendChild(el('option', { value: t.task, text: t.label })); });
        return s;
      }
      main.appendChild(el('h3', { text: 'Add items' }));
      var upTask = taskSelect('upload-task', true);
      var file = el('input', { type: 'file', id: 'upload-file' });
      var k = el('input', { type: 'number', id: 'upload-k', min: '2', max: '9', value: '4' });
      var ov = el('input', { type: 'number', id: 'upload-overlap', min: '1', max: '50', value: '1' });
      main.appendChild(el('form', { class: 'box', on: { submit: function (e) {
        e.preventDefault();
        var f = file.files[0];
        if (!f) return fail(new Error('choose a prompts file'));
        setStatus('Uploading' + (o.completionSource ? ' and generating completions' : '') + '…', '');
        api('POST', '/api/admin/upload?task=' + encodeURIComponent(upTask.value) + '&k=' + encodeURIComponent(k.value) + '&overlap=' + encodeURIComponent(ov.value) + '&filename=' + encodeURIComponent(f.name), f, true)
          .then(function (r) {
            route();
            if (r.dropped) setStatus('Added ' + r.added + ' items; ' + r.dropped + ' records of the file could not be read (see rlhf data validate).', 'error');
            else setStatus('Added ' + r.added + ' items.', 'ok');
          }, fail);
      } } }, [el('div', {}, ['Prompts file (any format @rlhf/data reads) ', file]), el('div', {}, ['Task ', upTask, ' K ', k, ' labelers per item ', ov, ' ', el('button', { type: 'submit', text: 'Upload' })]),
        el('div', { class: 'muted', text: 'Completions from: ' + (o.completionSource || 'nothing configured (studio.json "completions")') })]));
      var openTask = taskSelect('open-task', false);
      var count = el('input', { type: 'number', id: 'open-count', min: '1', max: '10000', value: '10' });
      var ov2 = el('input', { type: 'number', id: 'open-overlap', min: '1', max: '50', value: '1' });
      main.appendChild(el('form', { class: 'box', on: { submit: function (e) {
        e.preventDefault();
        api('POST', '/api/admin/open-tasks', { task: openTask.value, count: Number(count.value), overlap: Number(ov2.value) }).then(function (r) { setStatus('Added ' + r.added + ' items.', 'ok'); route(); }, fail);
      } } }, ['Task ', openTask, ' count ', count, ' labelers per item ', ov2, ' ', el('button', { type: 'submit', text: 'Add' })]));

      main.appendChild(el('h3', { text: 'Export' }));
      var ex = el('div', { class: 'box', id: 'export' });
      o.exportKinds.forEach(function (kind) {
        ex.appendChild(el('button', { type: 'button', 'data-kind': kind, text: 'Download ' + kind + '.jsonl', on: { click: function () {
          api('GET', '/api/admin/export/' + kind).then(function (text) {
            var a = el('a', { href: URL.createObjectURL(new Blob([text], { type: 'application/x-ndjson' })), download: kind + '.jsonl' });
            document.body.appendChild(a); a.click(); a.remove();
          }, fail);
        } } }));
        ex.appendChild(document.createTextNode(' '));
      });
      main.appendChild(ex);
    }, fail);
  }

  // Each route renders into its own container: answers that arrive after the person moved on land in a
  // detached node instead of mixing into the new view.
  function route() {
    var view = el('div');
    main.textContent = '';
    main.appendChild(view);
    var h = location.hash;
    if (h === '#logout') { sessionStorage.removeItem('rlhf-token'); history.replaceState(null, '', location.pathname); setStatus('Signed out.', ''); return login(view); }
    if (!token()) return login(view);
    api('GET', '/api/me').then(function (me) {
      nav(me);
      var m = /^#item\/(\d+)$/.exec(h);
      if (m) itemView(view, m[1]);
      else if (h === '#admin' && me.admin) admin(view);
      else queue(view);
    }, function (err) { fail(err); login(view); });
  }
  window.addEventListener('hashchange', route);
  route();
})();
`;
