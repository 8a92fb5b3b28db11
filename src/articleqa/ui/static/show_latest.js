() => {
  // After a reply: the question and its answer sentence in view at the top of the chat, the passages
  // below (Gradio's own scrolling would show the end of the last passage card). Run a few times: the
  // reply is painted in the frames after the event ends.
  const show = () => {
    const chat = document.querySelector('#aqa-chat');
    const asked = chat ? chat.querySelectorAll('[data-testid="user"]') : [];
    const last = asked[asked.length - 1];
    if (!last) return;
    let box = last.parentElement;
    while (box && box !== document.body) {
      if (/(auto|scroll)/.test(getComputedStyle(box).overflowY) && box.scrollHeight > box.clientHeight) break;
      box = box.parentElement;
    }
    if (box && box !== document.body) {
      box.scrollTop += last.getBoundingClientRect().top - box.getBoundingClientRect().top - 8;
    }
    const top = last.getBoundingClientRect().top;
    if (top < 0 || top > window.innerHeight * 0.6) window.scrollBy(0, top - 8);
  };
  for (const wait of [0, 60, 200, 500]) setTimeout(show, wait);
}
