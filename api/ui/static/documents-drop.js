// What the user gives to upload: dropped files, folders (walked, keeping each file's path
// relative to what was dropped) and archives, or the same through the file and folder inputs.

/** A file's path as the server will name the document: "handbook/hr/leave.md". */
export function relativePath(name) {
  return name
    .replaceAll("\\", "/")
    .split("/")
    .filter((part) => part && part !== ".")
    .join("/");
}

function read(entry) {
  return new Promise((resolve, reject) => entry.file(resolve, reject));
}

function children(reader) {
  return new Promise((resolve, reject) => reader.readEntries(resolve, reject));
}

async function walk(entry, found) {
  if (entry.isFile) {
    found.push({ file: await read(entry), path: relativePath(entry.fullPath) });
  } else if (entry.isDirectory) {
    const reader = entry.createReader();
    // readEntries answers in batches (100 in Chromium) until an empty one.
    for (let batch = await children(reader); batch.length; batch = await children(reader)) {
      for (const child of batch) await walk(child, found);
    }
  }
}

/**
 * The files of a drop as [{file, path}]. Entries must be taken while the event is being
 * dispatched (the list empties after), so this reads them before its first await.
 */
export async function dropped(dataTransfer) {
  const items = [...(dataTransfer.items || [])].filter((item) => item.kind === "file");
  const taken = items.length
    ? items.map((item) => ({ entry: item.webkitGetAsEntry?.(), file: item.getAsFile() }))
    : [...dataTransfer.files].map((file) => ({ entry: null, file }));
  const found = [];
  for (const { entry, file } of taken) {
    try {
      if (entry) {
        await walk(entry, found);
        continue;
      }
    } catch {
      /* a file the browser cannot read as an entry (e.g. made by a script): use it as is */
    }
    if (file) found.push({ file, path: relativePath(file.name) });
  }
  return found;
}

/** A picker's files as [{file, path}]; a folder input gives each file's path in the folder. */
export function picked(input) {
  return [...input.files].map((file) => ({
    file,
    path: relativePath(file.webkitRelativePath || file.name),
  }));
}

/** Send what is dropped on `zone` or chosen in `inputs` to `take([{file, path}])`. */
export function wireDrop(zone, inputs, take) {
  let depth = 0; // dragenter/dragleave fire for every child crossed
  const over = (on) => zone.classList.toggle("over", on);
  zone.addEventListener("dragenter", (event) => {
    event.preventDefault();
    depth += 1;
    over(true);
  });
  zone.addEventListener("dragover", (event) => {
    event.preventDefault();
    if (event.dataTransfer) event.dataTransfer.dropEffect = "copy";
  });
  zone.addEventListener("dragleave", () => {
    depth = Math.max(0, depth - 1);
    if (!depth) over(false);
  });
  zone.addEventListener("drop", async (event) => {
    event.preventDefault();
    depth = 0;
    over(false);
    const files = await dropped(event.dataTransfer);
    if (files.length) take(files);
  });
  for (const input of inputs) {
    input.addEventListener("change", () => {
      const files = picked(input);
      input.value = ""; // choosing the same files again is a new upload
      if (files.length) take(files);
    });
  }
  // A file dropped next to the zone would open in the tab, leaving the page.
  for (const name of ["dragover", "drop"]) {
    window.addEventListener(name, (event) => {
      const files = event.dataTransfer?.types.includes("Files");
      if (files && !zone.contains(event.target)) event.preventDefault();
    });
  }
}
