() => {
  // On a phone the chat comes first: the settings panel starts folded away.
  (() => {
    const fold = () => {
      if (window.innerWidth >= 768) return true;
      const toggle = document.querySelector('.sidebar.open .toggle-button');
      if (toggle) { toggle.click(); return true; }
      return !!document.querySelector('.sidebar');
    };
    let tries = 0;
    const again = () => { if (!fold() && tries++ < 50) setTimeout(again, 100); };
    again();
  })();
  // The library list's filter box: rows that do not hold the typed words are hidden, also after the
  // list is redrawn (an upload, a removal).
  (() => {
    const apply = () => {
      const box = document.querySelector('#aqa-filter input, #aqa-filter textarea');
      const words = box ? box.value.toLowerCase().trim() : '';
      document.querySelectorAll('#aqa-library tbody tr').forEach((row) => {
        row.hidden = !!words && !row.textContent.toLowerCase().includes(words);
      });
    };
    document.addEventListener('input', (event) => { if (event.target.closest('#aqa-filter')) apply(); });
    new MutationObserver(apply).observe(document.body, { childList: true, subtree: true });
  })();
  // A reply's Copy button puts the answer and its citation on the clipboard.
  document.addEventListener('click', (event) => {
    const button = event.target.closest('button.aqa-copy');
    if (!button) return;
    const hidden = button.parentElement.querySelector('.aqa-copy-text');
    const text = hidden ? hidden.textContent : '';
    const done = () => {
      button.textContent = 'Copied';
      setTimeout(() => { button.textContent = 'Copy answer'; }, 1500);
    };
    if (navigator.clipboard && window.isSecureContext) {
      navigator.clipboard.writeText(text).then(done);
    } else {
      const area = document.createElement('textarea');
      area.value = text; document.body.appendChild(area); area.select();
      document.execCommand('copy'); area.remove(); done();
    }
  });
  // "Read the whole article": the link's target goes to the server through a hidden box and button.
  document.addEventListener('click', (event) => {
    const link = event.target.closest('a.aqa-read');
    if (!link) return;
    event.preventDefault();
    const box = document.querySelector('#aqa-read-request textarea, #aqa-read-request input');
    const go = document.querySelector('#aqa-read-go');
    if (!box || !go) return;
    box.value = link.getAttribute('href').slice(1);
    box.dispatchEvent(new Event('input', { bubbles: true }));
    setTimeout(() => go.click(), 50);
  });
}
