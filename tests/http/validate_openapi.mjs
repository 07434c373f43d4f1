// validate_openapi.mjs - validate an OpenAPI document (a file of JSON) against the OpenAPI 3.1
// schemas with @seriousme/openapi-schema-validator; exit 1 with the errors when invalid.
import { readFileSync } from "node:fs";
import { Validator } from "@seriousme/openapi-schema-validator";

const doc = JSON.parse(readFileSync(process.argv[2], "utf8"));
const validator = new Validator();
const result = await validator.validate(doc);
if (!result.valid || validator.version !== "3.1") {
  console.error(`invalid OpenAPI ${validator.version}:`, JSON.stringify(result.errors, null, 2));
  process.exit(1);
}
console.log(`valid OpenAPI ${validator.version}: ${Object.keys(doc.paths).length} paths`);
