// title_slug.ts: the string transform of title_slug.c in AssemblyScript (same bytes out for
// valid UTF-8): ASCII letters lowercased, ASCII digits and non-ASCII characters kept, runs of
// other ASCII characters become one '-', no leading or trailing '-'. Shows the SDK's UTF-8
// helpers: readString decodes the (ptr, len) argument, returnString encodes the result.
// Build: asc title_slug.ts --runtime incremental --use abort= -O3 -o title_slug.as.wasm
import { readString, returnString } from "../../../sdk/assemblyscript/index";
export { qd_alloc, qd_reset, qd_abi_version } from "../../../sdk/assemblyscript/index";

export function title_slug(title_ptr: i32, title_len: i32): i64 {
  const title = readString(title_ptr, title_len);
  let out = "";
  let dash = false;
  for (let i = 0; i < title.length; i++) {
    let c = title.charCodeAt(i);
    if (c >= 0x41 && c <= 0x5a) c += 0x20; // A-Z -> a-z
    const keep = c >= 0x80 || (c >= 0x30 && c <= 0x39) || (c >= 0x61 && c <= 0x7a);
    if (!keep) {
      dash = true;
      continue;
    }
    if (dash && out.length > 0) out += "-";
    dash = false;
    out += String.fromCharCode(c);
  }
  return returnString(out);
}
