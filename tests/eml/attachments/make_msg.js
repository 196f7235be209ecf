// Writes a real Outlook .msg file (a Compound File Binary container, MS-OXMSG) with SheetJS `cfb`.
// Used by make_fixtures.py; run by hand:  npm install --prefix /tmp/cfb cfb@1.2.2
//   NODE_PATH=/tmp/cfb/node_modules node make_msg.js OUT.msg SUBJECT SENDER BODY
// Only the properties a mail client needs to show a note: message class, subject, sender, body.
"use strict";
const CFB = require("cfb");
const fs = require("fs");

const [out, subject, sender, body] = process.argv.slice(2);
const PT_UNICODE = 0x001f;

function utf16(text) {
  return Buffer.from(text, "utf16le"); // the stream holds no terminator; its size counts one
}

// [property id, value]: strings only (PT_UNICODE), stored in __substg1.0_<ID><TYPE> streams.
const props = [
  [0x001a, "IPM.Note"], // PidTagMessageClass
  [0x0037, subject], // PidTagSubject
  [0x0c1a, sender.split("<")[0].trim()], // PidTagSenderName
  [0x0c1f, (sender.match(/<([^>]+)>/) || [null, sender])[1]], // PidTagSenderEmailAddress
  [0x0e1d, subject], // PidTagNormalizedSubject
  [0x1000, body], // PidTagBody
];

const cfb = CFB.utils.cfb_new();
// The top-level property stream: a 32-byte header, then 16 bytes per property.
const header = Buffer.alloc(32);
const entries = [];
for (const [id, value] of props) {
  const name = "__substg1.0_" + id.toString(16).toUpperCase().padStart(4, "0") + "001F";
  const data = utf16(value);
  CFB.utils.cfb_add(cfb, "/" + name, data);
  const entry = Buffer.alloc(16);
  entry.writeUInt32LE(((id << 16) | PT_UNICODE) >>> 0, 0); // tag
  entry.writeUInt32LE(0x6, 4); // flags: readable | writable
  entry.writeUInt32LE(data.length + 2, 8); // size with the terminating null (MS-OXMSG 2.4.2.2)
  entries.push(entry);
}
CFB.utils.cfb_add(cfb, "/__properties_version1.0", Buffer.concat([header, ...entries]));
// The named-property mapping storage every .msg has, empty: no named properties are used.
CFB.utils.cfb_add(cfb, "/__nameid_version1.0/__substg1.0_00020102", Buffer.alloc(0));
CFB.utils.cfb_add(cfb, "/__nameid_version1.0/__substg1.0_00030102", Buffer.alloc(0));
CFB.utils.cfb_add(cfb, "/__nameid_version1.0/__substg1.0_00040102", Buffer.alloc(0));
// cfb adds one stream of its own ("\u0001Sh33tJ5"); Outlook and extract-msg ignore unknown streams.
fs.writeFileSync(out, CFB.write(cfb, { type: "buffer", fileType: "cfb" }));
