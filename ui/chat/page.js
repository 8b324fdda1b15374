() => {
  // The chat page's behaviour that Gradio's components do not have (issue 24). Plain DOM, no
  // framework: it reads what ui/chat/render.py writes (.rag-short, .rag-answer, .rag-src) and never
  // puts article text into the page as markup (textContent or clones of the rendered message only).
  const chat = () => document.querySelector('#rag-chat');
  const box = () => document.querySelector('#rag-question textarea');
  const LIMIT = __LIMIT__;  // rag.answering.questions.MAX_QUESTION_CHARS, filled in by ui/chat/app.py
  let exampleChosen = false;
  let asked = '';  // the question last sent: put back in the box if it is refused, so no text is lost
  let userRows = -1;

  // ---- scrolling: each new question at the top of the view, its answer's start below it --------
  const scroller = (el) => {
    for (let e = el && el.parentElement; e && e !== document.body; e = e.parentElement) {
      const style = getComputedStyle(e);
      if (/(auto|scroll)/.test(style.overflowY) && e.scrollHeight > e.clientHeight + 1) return e;
    }
    return null;
  };
  const showQuestion = (row) => {
    const pane = scroller(row);
    if (pane) {
      pane.scrollTop += row.getBoundingClientRect().top - pane.getBoundingClientRect().top - 8;
    }
    const top = row.getBoundingClientRect().top;
    if (top < 0 || top > window.innerHeight * 0.6) {
      window.scrollBy({top: top - 8});
    }
  };
  // The newest question stays pinned at the top while its answer arrives and grows, until the
  // reader scrolls themselves.
  let pinned = null;
  let pinnedHeight = 0;
  const unpin = () => { pinned = null; };
  for (const kind of ['wheel', 'touchmove', 'mousedown']) {
    document.addEventListener(kind, (e) => { if (e.target.closest && e.target.closest('#rag-chat')) unpin(); }, {passive: true});
  }
  const followQuestions = () => {
    const rows = document.querySelectorAll('#rag-chat .message-row.user-row');
    if (rows.length !== userRows) {
      const grew = rows.length > userRows && userRows >= 0;
      userRows = rows.length;
      pinned = grew && rows.length ? rows[rows.length - 1] : null;
      pinnedHeight = -1;
    }
    if (pinned && !pinned.isConnected) pinned = null;
    const pane = pinned && (scroller(pinned) || document.scrollingElement);
    if (pinned && pane.scrollHeight !== pinnedHeight) {
      pinnedHeight = pane.scrollHeight;
      showQuestion(pinned);
    }
  };

  // ---- the question box: focus back after answers and examples, a counter, empty Enter ----------
  const counter = () => {
    const b = box();
    if (!b) return;
    let c = document.querySelector('#rag-counter');
    if (!c) {
      c = document.createElement('div');
      c.id = 'rag-counter';
      c.setAttribute('aria-live', 'polite');
      c.className = 'rag-counter';
      b.closest('#rag-question').appendChild(c);
      b.setAttribute('aria-describedby', 'rag-counter');
    }
    const n = b.value.length;
    const text = `${n} / ${LIMIT}`;
    if (c.textContent !== text) c.textContent = text;
    c.classList.toggle('rag-counter-near', n > LIMIT * 0.9);
  };
  const labelBox = () => {
    const b = box();
    if (b && b.getAttribute('aria-label') !== 'Your question') b.setAttribute('aria-label', 'Your question');
    // Gradio empties the placeholder after the first answer; the box should still say what it is for.
    if (b && !b.placeholder) b.placeholder = 'Ask a question in English or German';
    const send = document.querySelector('#rag-question button.submit-button');
    if (send && send.getAttribute('aria-label') !== 'Send question') send.setAttribute('aria-label', 'Send question');
  };
  document.addEventListener('keydown', (e) => {
    const b = box();
    if (e.target === b && e.key === 'Enter' && !e.shiftKey && !e.isComposing) {
      if (!b.value.trim()) {
        e.preventDefault();
        e.stopImmediatePropagation();  // nothing to ask: no empty bubble, no warning
      } else {
        asked = b.value;
        asking();
      }
    }
    if (e.key === 'Escape') { hidePreview(); closePanel(); }
    if ((e.key === 'Enter' || e.key === ' ') && e.target.closest && e.target.closest('button.example')) exampleChosen = true;
  }, true);
  document.addEventListener('click', (e) => {
    const send = e.target.closest && e.target.closest('#rag-question button.submit-button');
    const b = box();
    if (send && b && !b.value.trim()) { e.preventDefault(); e.stopImmediatePropagation(); }
    if (send && b && b.value.trim()) { asked = b.value; asking(); }
    if (e.target.closest && e.target.closest('button.example')) asking();
    if (e.target.closest && e.target.closest('button.example')) exampleChosen = true;
  }, true);
  document.addEventListener('input', (e) => { if (e.target === box()) counter(); }, true);

  // ---- the chat in use survives a reload -------------------------------------------------------
  // Gradio saves the chats in the browser, newest first, and a reload shows the newest; the one in
  // use is kept here by its place in that list (-1: a new chat not yet saved) and opened again.
  const IN_USE = 'rag_chat_in_use';
  let restored = false;
  const remember = (value) => { try { localStorage.setItem(IN_USE, String(value)); } catch (err) { /* private mode */ } };
  const inUse = () => { try { return localStorage.getItem(IN_USE); } catch (err) { return null; } };
  const asking = () => { if (inUse() === null || inUse() === '-1') remember(0); };  // a new chat is saved first
  document.addEventListener('click', (e) => {
    if (!e.target.closest) return;
    const cell = e.target.closest('.rag-history td[data-testid^="dataset-cell-"]');
    const found = cell && cell.dataset.testid.match(/dataset-cell-(\d+)-/);
    if (found) remember(found[1]);
    const button = e.target.closest('.rag-history button');
    if (button && button.textContent.trim() === 'New chat') remember(-1);
  }, true);
  const restoreInUse = () => {
    if (restored) return;
    const wanted = inUse();
    if (wanted === null || wanted === '0') { restored = true; return; }
    if (!document.querySelector('#rag-chat .message-row.bot-row')) return;  // the newest is not shown yet
    restored = true;
    if (wanted === '-1') {
      const button = [...document.querySelectorAll('.rag-history button')].find((b) => b.textContent.trim() === 'New chat');
      if (button) button.click();
      return;
    }
    const cell = document.querySelector(`.rag-history td[data-testid="dataset-cell-${Number(wanted)}-0"]`);
    if (cell) cell.click();
  };

  // ---- deleting a chat asks first (Gradio's trash icon deleted it at once, for good) ------------
  document.addEventListener('click', (e) => {
    const clear = e.target.closest && e.target.closest('#rag-chat button[aria-label="Clear"], #rag-chat button[title="Clear"]');
    if (!clear) return;
    if (!window.confirm('Delete this chat? It cannot be brought back.')) {
      e.preventDefault();
      e.stopImmediatePropagation();
    } else {
      remember(-1);
    }
  }, true);

  // ---- Copy: plain text, numbered sources, absolute links ----------------------------------------
  const plainText = (message) => {
    const md = message.querySelector('.md') || message;
    const lines = [];
    for (const block of md.children) {
      if (block.tagName === 'DETAILS') continue;  // "also retrieved": not what the answer rests on
      if (block.tagName === 'BLOCKQUOTE') continue;  // the passage: its link says where it is
      const src = block.querySelector && block.querySelector('.rag-src');
      if (src) {
        const link = src.querySelector('a');
        lines.push(`${src.innerText.trim()}\n    ${link ? link.href : ''}`);
        continue;
      }
      const text = block.innerText.trim();
      if (text) lines.push(text);
    }
    return lines.join('\n').replace(/\n{3,}/g, '\n\n');
  };
  document.addEventListener('click', (e) => {
    const button = e.target.closest && e.target.closest('#rag-chat button[title="Copy message"], #rag-chat button[aria-label="Copy message"]');
    if (!button) return;
    const row = button.closest('.message-row') || button.closest('[class*=message]');
    const message = row && row.querySelector('.message-content');
    if (!message) return;
    e.preventDefault();
    e.stopImmediatePropagation();
    const text = plainText(message);
    navigator.clipboard.writeText(text).then(() => {
      button.setAttribute('aria-label', 'Copied');
      setTimeout(() => button.setAttribute('aria-label', 'Copy message'), 1500);
    });
  }, true);

  // ---- preview of [n] on hover and keyboard focus -------------------------------------------------
  const preview = document.createElement('div');
  preview.id = 'rag-preview';
  preview.setAttribute('role', 'tooltip');
  preview.hidden = true;
  document.body.appendChild(preview);
  const sourceOf = (link) => {
    const message = link.closest('.message-content');
    const label = link.textContent.trim();
    if (!message || !/^\[\d+\]$/.test(label)) return null;
    for (const src of message.querySelectorAll('.rag-src')) {
      const a = src.querySelector('a');
      if (a && a.textContent.trim() === label) return src;
    }
    return null;
  };
  function hidePreview() { preview.hidden = true; }
  const showPreview = (link) => {
    const src = sourceOf(link);
    if (!src) return;
    const block = src.closest('p');
    const quote = block && block.nextElementSibling && block.nextElementSibling.tagName === 'BLOCKQUOTE'
      ? block.nextElementSibling : null;
    preview.replaceChildren();
    const head = document.createElement('div');
    head.className = 'rag-preview-title';
    head.textContent = src.innerText.trim();
    preview.appendChild(head);
    if (quote) {
      const body = quote.cloneNode(true);  // the rendered (sanitised) passage, with its highlight
      body.className = 'rag-preview-passage';
      preview.appendChild(body);
    }
    const hint = document.createElement('div');
    hint.className = 'rag-preview-hint';
    hint.textContent = 'Enter or click: open the article';
    preview.appendChild(hint);
    preview.hidden = false;
    link.setAttribute('aria-describedby', 'rag-preview');
    const r = link.getBoundingClientRect();
    const width = Math.min(420, window.innerWidth - 16);
    preview.style.width = `${width}px`;
    preview.style.left = `${Math.max(8, Math.min(r.left, window.innerWidth - width - 8))}px`;
    const below = r.bottom + 6;
    preview.style.top = `${below}px`;
    const h = preview.getBoundingClientRect().height;
    if (below + h > window.innerHeight && r.top - h - 6 > 0) preview.style.top = `${r.top - h - 6}px`;
  };
  const citeLink = (t) => t && t.closest && t.closest('#rag-chat .rag-answer a[href*="article="]');
  document.addEventListener('mouseover', (e) => { const a = citeLink(e.target); if (a) showPreview(a); });
  document.addEventListener('mouseout', (e) => { if (citeLink(e.target)) hidePreview(); });
  document.addEventListener('focusin', (e) => { const a = citeLink(e.target); if (a) showPreview(a); else hidePreview(); });

  // ---- the article in a side panel, at the sentence -----------------------------------------------
  let opener = null;
  function closePanel() {
    if (!document.body.classList.contains('rag-panel-open')) return;
    document.body.classList.remove('rag-panel-open');
    if (opener) opener.focus();
    opener = null;
  }
  const openPanel = (link) => {
    const url = new URL(link.href, location.href);
    const request = document.querySelector('#rag-panel-request textarea, #rag-panel-request input');
    if (!request) return false;
    const panel = document.querySelector('#rag-panel');
    const body = panel.querySelector('#rag-panel-article');
    if (body) body.dataset.waiting = '1';
    request.value = [url.searchParams.get('article') || '', url.searchParams.get('at') || '', Date.now()].join('|');
    request.dispatchEvent(new Event('input', {bubbles: true}));
    opener = link;
    document.body.classList.add('rag-panel-open');
    panel.setAttribute('role', 'dialog');
    panel.setAttribute('aria-label', 'Article');
    hidePreview();
    const close = panel.querySelector('#rag-panel-close');
    if (close) close.focus();
    return true;
  };
  document.addEventListener('click', (e) => {
    if (e.button !== 0 || e.ctrlKey || e.metaKey || e.shiftKey || e.altKey) return;  // a new tab stays possible
    const link = e.target.closest && e.target.closest('#rag-chat a[href*="article="]');
    if (link && openPanel(link)) e.preventDefault();
    if (e.target.closest && e.target.closest('#rag-panel-close')) closePanel();
  }, true);

  // ---- labels Gradio does not give --------------------------------------------------------------
  const label = () => {
    labelBox();
    const newChat = [...document.querySelectorAll('button')].find((b) => b.textContent.trim() === 'New chat');
    const column = newChat && newChat.closest('.column');
    if (column && !column.classList.contains('rag-history')) column.classList.add('rag-history');
    const history = column && column.querySelector('table');
    if (history && !history.getAttribute('aria-label')) history.setAttribute('aria-label', 'Past chats');
    for (const m of document.querySelectorAll('#rag-chat [data-testid="bot"][aria-label], #rag-chat [data-testid="user"][aria-label]')) {
      // Gradio names each message by its raw Markdown; the text itself is the better name.
      m.removeAttribute('aria-label');
    }
  };

  let scheduled = false;
  const tick = () => {
    scheduled = false;
    const b = box();
    if (b && !b.disabled && b.dataset.ragWasDisabled === '1' && asked) {
      const bots = document.querySelectorAll('#rag-chat .message-row.bot-row .message-content');
      const last = bots.length ? bots[bots.length - 1].innerText.trim() : '';
      if (last.startsWith('⚠️') && !b.value) {
        b.value = asked;
        b.dispatchEvent(new Event('input', {bubbles: true}));
      }
      asked = '';
    }
    if (b && !b.disabled && (b.dataset.ragWasDisabled === '1' || exampleChosen)) {
      if (b.dataset.ragWasDisabled === '1' || document.activeElement === document.body || !document.activeElement) {
        b.dataset.ragWasDisabled = '0';
        exampleChosen = false;
        if (!document.body.classList.contains('rag-panel-open')) b.focus();
      }
    }
    if (b && b.disabled) b.dataset.ragWasDisabled = '1';
    for (const mark of document.querySelectorAll('#rag-article mark#rag-highlight:not([data-seen]), #rag-panel-article mark#rag-highlight:not([data-seen])')) {
      mark.dataset.seen = '1';
      mark.scrollIntoView({block: 'center'});
    }
    followQuestions();
    counter();
    label();
    restoreInUse();
  };
  new MutationObserver(() => {
    if (!scheduled) { scheduled = true; requestAnimationFrame(tick); }
  }).observe(document.body, {subtree: true, childList: true, characterData: true, attributes: true, attributeFilter: ['disabled']});
  tick();
}
