// Who is signed in: the token (kept for the browser tab only, sessionStorage, so closing the
// tab signs out) and the project last chosen. `#token=...` in the address (what
// `pincompute up` prints for the local admin token) signs in and is removed from the address.

const TOKEN = "pincompute.token";
const PROJECT = "pincompute.project";

export const session = {
  token: sessionStorage.getItem(TOKEN) || "",
  project: localStorage.getItem(PROJECT) || "",
  isAdmin: false,
  user: "",
  projects: [],
  onExpired: null,
  signIn(token) {
    this.token = token.trim();
    sessionStorage.setItem(TOKEN, this.token);
  },
  signOut() {
    this.token = "";
    this.isAdmin = false;
    this.user = "";
    sessionStorage.removeItem(TOKEN);
  },
  choose(project) {
    this.project = project;
    localStorage.setItem(PROJECT, project);
  },
  expired(message) {
    this.onExpired?.(message);
  },
};

export function tokenFromAddress() {
  const match = /^#token=([^&]+)/.exec(location.hash);
  if (!match) return false;
  session.signIn(decodeURIComponent(match[1]));
  history.replaceState(null, "", `${location.pathname}#/`);
  return true;
}
