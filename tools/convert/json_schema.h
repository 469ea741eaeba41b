// JSON Schema -> GBNF (engine/grammar.h) for the common subset, and the GBNF of
// any JSON value / object. Tools-side (it needs a JSON parser; the runtime
// takes GBNF text).
//
// Supported: type (a name or a list of names) object / array / string /
// number / integer / boolean / null; properties (emitted in declared order;
// required ones always, the others optional), required, additionalProperties
// (false, or absent / true with no properties = any members, or a schema with
// no properties = members of that schema); items, minItems, maxItems; string
// minLength, maxLength; enum and const (any JSON values, mixed); anyOf and
// oneOf (as alternatives: oneOf's exclusivity is not enforced); local $ref to
// #/$defs/NAME or #/definitions/NAME (recursion allowed); annotations (title,
// description, default, examples, $schema, $id, $comment) are ignored.
// Anything else (pattern, format, minimum, allOf, remote $ref, ...) is an
// error naming the keyword and its place ("#/properties/a: 'pattern' is not
// supported").
//
// Output shape: compact-ish JSON; whitespace is allowed between tokens but
// bounded (at most one newline + 20 blanks), numbers have bounded digits
// (integer part at most 16, fraction at most 16, exponent at most 3) so a
// schema whose strings and arrays are bounded has a bounded output.
#pragma once

#include <string>
#include <string_view>

namespace lamina::json {
class Value;
}

namespace lamina::convert {

/// GBNF whose root is any JSON object (object_only) or any JSON value.
std::string JsonAnyGbnf(bool object_only);

/// Converts a JSON Schema (text) to GBNF with start rule "root". False + *err
/// ("json-schema: ..." naming the keyword and the JSON pointer) if the text is
/// not JSON or uses a feature outside the subset above.
bool JsonSchemaToGbnf(std::string_view schema_text, std::string* gbnf, std::string* err);
bool JsonSchemaToGbnf(const json::Value& schema, std::string* gbnf, std::string* err);

/// The GBNF llama-run's options ask for: the text of gbnf_file, or the
/// conversion of the schema in schema_file, or any JSON object (json), or ""
/// when none is given. False + *err naming the file on failure.
bool GrammarForRun(const std::string& gbnf_file, const std::string& schema_file, bool json,
                   std::string* gbnf, std::string* err);

/// Appends `s` as a GBNF string literal ("..." with escapes).
void AppendGbnfLiteral(std::string* out, std::string_view s);

}  // namespace lamina::convert
