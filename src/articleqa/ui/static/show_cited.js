() => {
  // After the reader opens: the cited passage in view.
  const show = () => {
    const cited = document.querySelector('#aqa-cited');
    if (cited) cited.scrollIntoView({ block: 'start' });
  };
  for (const wait of [0, 100, 300]) setTimeout(show, wait);
}
