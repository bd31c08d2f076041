// Reads one match page of scores.example. cdpilot calls this function in the page with the
// target's "params" ({"events": 5}) and awaits it; what it returns (a JSON object of at most
// 256 KiB) becomes the snapshot's data. In watch mode it is called again on the same
// document at each read, so it keeps nothing on window.
async (params) => {
  const root = document.querySelector('#match');
  const text = (sel) => {
    const e = root.querySelector(sel);
    return e ? e.textContent.trim() : null;
  };
  const int = (s) => (s !== null && /^\d+$/.test(s) ? Number(s) : null);
  const events = Array.from(root.querySelectorAll('#events li'))
    .slice(-params.events)
    .map((li) => ({ minute: int(li.dataset.minute ?? null), text: li.textContent.trim() }));
  return {
    home: text('.team.home'),
    away: text('.team.away'),
    score: { home: int(text('#score .home')), away: int(text('#score .away')) },
    minute: int(text('#minute')),
    status: text('#status'),
    events,
  };
}
