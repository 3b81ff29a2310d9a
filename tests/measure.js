// Injected into a page by tests/browser.py: what a reader sees, measured after load, written into the DOM as JSON.
window.addEventListener("load", () => {
  const column = document.querySelector(".md-content__inner") || document.body;
  const width = column.getBoundingClientRect().width;
  const area = (document.querySelector(".md-content") || document.body).getBoundingClientRect().width;
  const scrolls = (table) => {  // inside a box that scrolls sideways and stays within the content area
    for (let box = table.parentElement; box && box !== column; box = box.parentElement) {
      if (["auto", "scroll"].includes(getComputedStyle(box).overflowX)) {
        return box.getBoundingClientRect().width <= area + 1;
      }
    }
    return false;
  };
  const out = {column: width, tables: [], images: []};
  document.querySelectorAll("table").forEach((table) => {
    const first = table.querySelector("tr > :first-child");
    out.tables.push({
      width: table.getBoundingClientRect().width,
      scrolls: scrolls(table),
      sticky: first ? getComputedStyle(first).position : null,
      head: (table.querySelector("th") || {}).textContent || "",
    });
  });
  document.querySelectorAll("img").forEach((img) => {
    out.images.push({src: img.getAttribute("alt") || "", natural: img.naturalWidth, shown: img.getBoundingClientRect().width});
  });
  const prose = column.cloneNode(true);  // the text a reader reads, code blocks aside
  prose.querySelectorAll("pre, code, script, style").forEach((node) => node.remove());
  out.text = prose.innerText;
  const result = document.createElement("pre");
  result.id = "delbind-measure";
  result.textContent = JSON.stringify(out);
  document.body.appendChild(result);
});
