// The campaign editor shows only the settings the chosen mechanic reads (without script, all show).
document.addEventListener("DOMContentLoaded", () => {
  const choice = document.querySelector("select[data-mechanic-choice]");
  if (!choice) return;
  const update = () => {
    document.querySelectorAll("[data-mechanics]").forEach((row) => {
      row.hidden = !row.dataset.mechanics.split(" ").includes(choice.value);
    });
  };
  choice.addEventListener("change", update);
  update();
});
