// validate.mjs - checks plugin manifests (what `pexec info` prints) against
// plugin.schema.json with Ajv, a JSON Schema draft 2020-12 validator.
//
//   node tests/schema/validate.mjs AJV_DIR SCHEMA MANIFEST...
//
// Prints one line per manifest ("valid" or the validator's errors) and exits
// 0 when every manifest is valid, 1 otherwise, 2 on a usage or read error.
import { readFileSync } from "node:fs";
import { createRequire } from "node:module";
import { join, resolve } from "node:path";

const [ajvDir, schemaPath, ...manifests] = process.argv.slice(2);
if (!ajvDir || !schemaPath || manifests.length === 0) {
	console.error("usage: validate.mjs AJV_DIR SCHEMA MANIFEST...");
	process.exit(2);
}
let ajv, validate;
try {
	const require = createRequire(join(resolve(ajvDir), "package.json"));
	const Ajv2020 = require("ajv/dist/2020").default;
	ajv = new Ajv2020({ strict: true, allErrors: true });
	validate = ajv.compile(JSON.parse(readFileSync(schemaPath, "utf8")));
} catch (e) {
	console.error(`cannot set up the validator: ${e.message}`);
	process.exit(2);
}

let bad = 0;
for (const path of manifests) {
	let manifest;
	try {
		manifest = JSON.parse(readFileSync(path, "utf8"));
	} catch (e) {
		console.error(`${path}: cannot read: ${e.message}`);
		process.exit(2);
	}
	if (validate(manifest)) {
		console.log(`${path}: valid`);
	} else {
		bad++;
		console.log(`${path}: invalid: ${ajv.errorsText(validate.errors)}`);
	}
}
process.exit(bad ? 1 : 0);
