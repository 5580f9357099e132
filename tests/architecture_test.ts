/**
 * The layout rules of docs/architecture.md, checked on the source: a folder with a `mod.ts` is
 * entered only through it, and no module imports itself through a circle.
 */
import assert from "node:assert/strict";

const ROOT = new URL("../", import.meta.url);
const SOURCE_ROOTS = ["main.ts", "lib", "peer", "tracker"];
const IMPORT = /(?:from|import)\s*\(?\s*"(\.{1,2}\/[^"]+)"/g;

async function sourceFiles(): Promise<string[]> {
  const files: string[] = [];
  const walk = async (path: string) => {
    const info = await Deno.stat(new URL(path, ROOT));
    if (info.isFile) {
      if (path.endsWith(".ts")) files.push(path);
      return;
    }
    for await (const entry of Deno.readDir(new URL(path, ROOT))) {
      await walk(`${path}/${entry.name}`);
    }
  };
  for (const root of SOURCE_ROOTS) await walk(root);
  return files.sort();
}

function resolve(from: string, specifier: string): string {
  const parts = from.split("/").slice(0, -1);
  for (const part of specifier.split("/")) {
    if (part === "..") parts.pop();
    else if (part !== ".") parts.push(part);
  }
  return parts.join("/");
}

async function importGraph(): Promise<Map<string, string[]>> {
  const graph = new Map<string, string[]>();
  for (const file of await sourceFiles()) {
    const text = await Deno.readTextFile(new URL(file, ROOT));
    graph.set(file, [...text.matchAll(IMPORT)].map((match) => resolve(file, match[1])));
  }
  return graph;
}

/** The outermost folder holding `file` that has a mod.ts, with the folders below it that do too. */
function gatedFolders(file: string, files: Set<string>): string[] {
  const parts = file.split("/");
  const folders: string[] = [];
  for (let i = 1; i < parts.length; i++) {
    const folder = parts.slice(0, i).join("/");
    if (files.has(`${folder}/mod.ts`)) folders.push(folder);
  }
  return folders;
}

Deno.test("every folder with a mod.ts is imported only through it from outside", async () => {
  const graph = await importGraph();
  const files = new Set(graph.keys());
  const violations: string[] = [];
  for (const [file, targets] of graph) {
    for (const target of targets) {
      for (const folder of gatedFolders(target, files)) {
        const inside = file.startsWith(`${folder}/`);
        if (!inside && target !== `${folder}/mod.ts`) violations.push(`${file} -> ${target}`);
        if (!inside) break;
      }
    }
  }
  assert.deepEqual(violations, []);
});

Deno.test("no source module imports itself through a circle", async () => {
  const graph = await importGraph();
  const circles: string[] = [];
  const state = new Map<string, "visiting" | "done">();
  const path: string[] = [];
  const visit = (file: string) => {
    if (state.get(file) === "done") return;
    if (state.get(file) === "visiting") {
      circles.push([...path.slice(path.indexOf(file)), file].join(" -> "));
      return;
    }
    state.set(file, "visiting");
    path.push(file);
    for (const target of graph.get(file) ?? []) visit(target);
    path.pop();
    state.set(file, "done");
  };
  for (const file of graph.keys()) visit(file);
  assert.deepEqual(circles, []);
});
