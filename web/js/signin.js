import { auth } from "./auth.js";
import { h } from "./dom.js";

export function signInView(view, { onSignedIn }) {
  const status = h("p", { class: "error", role: "alert", hidden: true });
  const fail = (err) => {
    status.hidden = false;
    status.textContent = err.requestId ? `${err.message} (request id ${err.requestId})` : err.message;
  };
  const form =
    auth.mode() === "dev"
      ? devForm(fail, onSignedIn)
      : firebaseForm(fail, onSignedIn);
  view.append(h("section", { class: "card narrow" }, h("h1", {}, "Sign in"), form, status));
  form.querySelector("input")?.focus();
}

function devForm(fail, onSignedIn) {
  const uid = h("input", { id: "dev-uid", name: "uid", required: true, autocomplete: "username", pattern: "[A-Za-z0-9_.\\-]+", value: "student-1" });
  const admin = h("input", { id: "dev-admin", name: "admin", type: "checkbox" });
  return h(
    "form",
    {
      onsubmit: async (e) => {
        e.preventDefault();
        try {
          await auth.devSignIn(uid.value.trim(), admin.checked);
          onSignedIn();
        } catch (err) {
          fail(err);
        }
      },
    },
    h("p", { class: "notice" }, "Development sign-in: the local stack mints an Auth-emulator token. It exists only on the local server."),
    h("label", { for: "dev-uid" }, "User id"),
    uid,
    h("label", { class: "check", for: "dev-admin" }, admin, " Staff (admin claim)"),
    h("button", { type: "submit", class: "primary" }, "Sign in"),
  );
}

function firebaseForm(fail, onSignedIn) {
  const email = h("input", { id: "email", name: "email", type: "email", required: true, autocomplete: "email" });
  const password = h("input", { id: "password", name: "password", type: "password", required: true, autocomplete: "current-password" });
  return h(
    "form",
    {
      onsubmit: async (e) => {
        e.preventDefault();
        try {
          await auth.firebaseSignIn(email.value.trim(), password.value);
          onSignedIn();
        } catch (err) {
          fail(err);
        }
      },
    },
    h("label", { for: "email" }, "Email"),
    email,
    h("label", { for: "password" }, "Password"),
    password,
    h("button", { type: "submit", class: "primary" }, "Sign in"),
  );
}
