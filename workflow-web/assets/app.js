// The web view's one script: refreshes a diagram's counts every second, and sends actions.
"use strict";
(function () {
  // The same levels as the runtime's `count_heat`: 0 for none, 1 to 5 by share of the largest.
  function heat(count, max) {
    return count === 0 ? 0 : Math.min(5, 1 + Math.floor((4 * count) / Math.max(1, max)));
  }

  // The drawing's state groups and the table's rows both carry data-state; each holds its
  // count in [data-count], a row its running ones in [data-running]; a drawn state's colour
  // is its heat-N class.
  const diagram = document.querySelector("[data-live-diagram]");
  if (diagram) {
    const url = diagram.getAttribute("data-live-diagram");
    const status = document.querySelector("[data-live-status]");
    const refresh = async function () {
      try {
        const answer = await fetch(url, { headers: { accept: "application/json" } });
        if (!answer.ok) throw new Error(answer.status);
        const d = await answer.json();
        const max = d.counts.reduce((m, c) => Math.max(m, c.instances), 0);
        for (const c of d.counts) {
          for (const el of diagram.querySelectorAll('[data-state="' + CSS.escape(c.state) + '"]')) {
            const count = el.querySelector("[data-count]");
            if (count) count.textContent = c.instances;
            const running = el.querySelector("[data-running]");
            if (running) running.textContent = c.running;
            if (el.classList.contains("state")) {
              for (let h = 0; h <= 5; h++) el.classList.remove("heat-" + h);
              el.classList.add("heat-" + heat(c.instances, max));
            }
          }
        }
        status.textContent = "live";
        status.classList.remove("stale");
      } catch (e) {
        status.textContent = "not refreshed: " + e.message;
        status.classList.add("stale");
      }
      setTimeout(refresh, 1000);
    };
    setTimeout(refresh, 1000);
  }

  const actions = document.querySelector("[data-actions]");
  if (actions) {
    const url = actions.getAttribute("data-actions");
    const token = actions.querySelector("[data-token]");
    const result = actions.querySelector("[data-action-result]");
    token.value = sessionStorage.getItem("workflow-token") || "";
    for (const button of actions.querySelectorAll("[data-action]")) {
      button.addEventListener("click", async function () {
        const action = button.getAttribute("data-action");
        sessionStorage.setItem("workflow-token", token.value);
        const init = { method: "POST", headers: { "x-workflow-token": token.value } };
        if (action === "send") {
          init.headers["content-type"] = "application/json";
          init.body = actions.querySelector("[data-event]").value;
        }
        try {
          const answer = await fetch(url + action, init);
          const body = await answer.json();
          if (answer.ok) {
            result.textContent = action + ": done";
            location.reload();
          } else {
            result.textContent = action + ": " + body.error;
          }
        } catch (e) {
          result.textContent = action + ": " + e.message;
        }
      });
    }
  }
})();
