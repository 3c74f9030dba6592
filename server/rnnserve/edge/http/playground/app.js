// The playground's shell: tabs (the URL's #fragment names the view), the token field.

import { setToken, token } from "./api.js";
import { initGenerate } from "./generate.js";
import { initModels } from "./models.js";
import { initTranslate } from "./translate.js";
import { notify } from "./ui.js";
import { initWrite } from "./write.js";

const views = { write: initWrite(), generate: initGenerate(), translate: initTranslate(), models: initModels() };
const tabs = [...document.querySelectorAll("[role=tab]")];
let current = null;

function select(name, focusTab = false) {
  if (!(name in views)) name = "write";
  if (name === current) return;
  if (current) views[current].hide?.();
  current = name;
  for (const tab of tabs) {
    const chosen = tab.dataset.view === name;
    tab.setAttribute("aria-selected", String(chosen));
    tab.tabIndex = chosen ? 0 : -1;
    document.getElementById(tab.getAttribute("aria-controls")).hidden = !chosen;
    if (chosen && focusTab) tab.focus();
  }
  if (location.hash !== `#${name}`) history.replaceState(null, "", `#${name}`);
  notify("");
  views[name].show();
}

for (const tab of tabs) {
  tab.addEventListener("click", () => select(tab.dataset.view));
  tab.addEventListener("keydown", (event) => { // arrow keys move between tabs (WAI-ARIA tabs pattern)
    const step = { ArrowRight: 1, ArrowLeft: -1 }[event.key];
    if (!step) return;
    event.preventDefault();
    const next = tabs[(tabs.indexOf(tab) + step + tabs.length) % tabs.length];
    select(next.dataset.view, true);
  });
}
window.addEventListener("hashchange", () => select(location.hash.slice(1)));

const tokenField = document.getElementById("token");
tokenField.value = token();
document.getElementById("token-form").addEventListener("submit", (event) => {
  event.preventDefault();
  setToken(tokenField.value.trim());
  const name = current;
  current = null; // show the view again with the new token
  views[name].hide?.();
  select(name);
});

select(location.hash.slice(1));
