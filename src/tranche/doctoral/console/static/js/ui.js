// Page-wide pieces: the status line (a polite live region) and the confirmation dialog.

const statusBox = () => document.getElementById("status");

export function say(message, error = false) {
  const box = statusBox();
  box.classList.toggle("error", error);
  box.textContent = message;
}

export function clearStatus() { say(""); }

/** Opens the modal confirmation (native <dialog>: focus kept inside, Escape cancels).
 *  Resolves with the form's values, or null when cancelled. */
export function confirmDialog({ title, text, fields = [], okLabel = "Confirmer" }) {
  const dialog = document.getElementById("confirm");
  document.getElementById("confirm-title").textContent = title;
  document.getElementById("confirm-text").textContent = text;
  const box = document.getElementById("confirm-fields");
  box.replaceChildren(...fields);
  document.getElementById("confirm-ok").textContent = okLabel;
  const opener = document.activeElement;
  return new Promise((resolve) => {
    dialog.addEventListener("close", () => {
      const form = document.getElementById("confirm-form");
      const values = dialog.returnValue === "ok" ? new FormData(form) : null;
      if (opener instanceof HTMLElement && opener.isConnected) opener.focus();
      resolve(values);
    }, { once: true });
    dialog.returnValue = "";
    dialog.showModal();
    const first = box.querySelector("input, select");
    (first || document.getElementById("confirm-ok")).focus();
  });
}
