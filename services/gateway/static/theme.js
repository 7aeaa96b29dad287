// Light and dark themes: the page follows the system (prefers-color-scheme) until the person picks
// one with the toggle; the choice is kept in localStorage. Also switches the code-highlighting
// style sheet to match.

const KEY = "ducklm.theme";
const CHOICES = ["system", "light", "dark"];
const LABELS = { system: "Theme: follows the system", light: "Theme: light", dark: "Theme: dark" };
const ICONS = { system: "◐", light: "☀", dark: "☾" };
const systemDark = window.matchMedia("(prefers-color-scheme: dark)");

function load() {
  try {
    const value = localStorage.getItem(KEY);
    return CHOICES.includes(value) ? value : "system";
  } catch {
    return "system"; // storage can be off (private windows): follow the system
  }
}

let choice = load();

export function effectiveTheme() {
  if (choice === "system") return systemDark.matches ? "dark" : "light";
  return choice;
}

function apply(button) {
  const theme = effectiveTheme();
  document.documentElement.dataset.theme = theme;
  document.getElementById("code-light").disabled = theme === "dark";
  document.getElementById("code-dark").disabled = theme !== "dark";
  button.dataset.themeChoice = choice;
  button.textContent = ICONS[choice];
  button.title = button.ariaLabel = `${LABELS[choice]} (click to change)`;
}

export function setUpTheme(button) {
  apply(button);
  systemDark.addEventListener("change", () => apply(button));
  button.addEventListener("click", () => {
    choice = CHOICES[(CHOICES.indexOf(choice) + 1) % CHOICES.length];
    try {
      if (choice === "system") localStorage.removeItem(KEY);
      else localStorage.setItem(KEY, choice);
    } catch {
      // not kept across visits, still applied below
    }
    apply(button);
  });
}
