// The course site: search snippets from the article alone.
// Sphinx's search takes a result's snippet from the page's whole main area, which in this theme
// also holds the page's list of contents and its buttons, so snippets read "... Light Dark ...
// A crash, simulated A real crash: SIGKILL ..." (a contents list kept for printing). Those parts
// are dropped before it reads the page.
document.addEventListener("DOMContentLoaded", () => {
  if (typeof Search === "undefined") return; // only the search page has Sphinx's search
  const htmlToText = Search.htmlToText;
  Search.htmlToText = (htmlString, anchor) => {
    const page = new DOMParser().parseFromString(htmlString, "text/html");
    page
      .querySelectorAll(".bd-sidebar-secondary, .bd-header-article, .onlyprint, .prev-next-footer, .how-to-run")
      .forEach((element) => element.remove());
    return htmlToText(page.documentElement.outerHTML, anchor);
  };
});

// A notebook's pictures are scaled down to the column; a click opens one at full size (on a phone,
// where its labels are too small to read, it can then be zoomed).
document.addEventListener("DOMContentLoaded", () => {
  document.querySelectorAll(".bd-article .cell_output img").forEach((picture) => {
    if (picture.closest("a")) return;
    const link = document.createElement("a");
    link.href = picture.src;
    link.title = "Open the picture at full size";
    picture.replaceWith(link);
    link.appendChild(picture);
  });
});
