// Renders Vega-Lite specs to SVG with Vega itself: the figures behind moelab's PNG export
// (src/report/png_export.cpp), drawn by the same browser bundles the HTML report inlines, so a figure and its
// chart in the report come from one code path. All charts of a report go through one Node.js process.
//
// Usage: node render-svg.js BUNDLE_DIR JOBS_JSON OUT_DIR SCALE
//   BUNDLE_DIR  holds vega.min.js and vega-lite.min.js (UMD browser builds; evaluated in the global scope as a
//               browser would, so no node_modules is needed at run time)
//   JOBS_JSON   a file holding [{"id": "...", "spec": {Vega-Lite spec}}, ...]
//   OUT_DIR     receives <id>.svg for every job, its width and height multiplied by SCALE
// Exits non-zero, naming the chart, on the first spec Vega cannot render.
'use strict';
const fs = require('fs');
const path = require('path');
const vm = require('vm');

async function main() {
  const [bundleDir, jobsFile, outDir, scaleText] = process.argv.slice(2);
  const scale = Number(scaleText);
  if (!outDir || !(scale > 0)) throw new Error('usage: node render-svg.js BUNDLE_DIR JOBS_JSON OUT_DIR SCALE');
  for (const name of ['vega.min.js', 'vega-lite.min.js']) {
    const file = path.join(bundleDir, name);
    vm.runInThisContext(fs.readFileSync(file, 'utf8'), {filename: file});
  }
  const jobs = JSON.parse(fs.readFileSync(jobsFile, 'utf8'));
  for (const job of jobs) {
    try {
      const compiled = vegaLite.compile(job.spec).spec;
      const view = new vega.View(vega.parse(compiled), {renderer: 'none'});
      const svg = await view.toSVG(scale);
      view.finalize();
      fs.writeFileSync(path.join(outDir, job.id + '.svg'), svg);
    } catch (e) {
      throw new Error(`chart '${job.id}': ${e && e.message ? e.message : e}`);
    }
  }
}

main().catch((e) => {
  process.stderr.write(`render-svg: ${e && e.message ? e.message : e}\n`);
  process.exit(1);
});
