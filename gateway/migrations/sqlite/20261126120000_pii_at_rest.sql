-- Personal data sealed at rest (docs/encryption.md). items.name, id_no, account_no, phone and
-- blacklist.value keep their names and type but hold `v1:<key_id>:<base64(nonce || ciphertext || tag)>`,
-- AES-256-GCM per field, bound to its row and column. Rows written before this version still hold
-- plaintext: the key rotation pass (a background task, or `gateway keys rotate`) seals them, since a
-- value without the `v1:` prefix counts as sealed with an old key.

-- SMS delivery receipts name a phone: a notice whose outcome is unknown is found by this keyed hash
-- (HMAC with the look-up key) of its phone, as the phone itself is sealed. Written when the notice is
-- first taken for sending, so only notices ever sent have one (one left `unknown` by an earlier version
-- has none: it is sent again after its grace, as when no receipt names it). No index: the look-up
-- starts from the few `unknown` notices (notices_due).
alter table notices add column phone_hash text;

-- Progress of the rotation pass per table: it walks the rows in primary-key order from the cursor,
-- resealing every value not sealed with `key_id` (the current key), page by page, each page in one
-- transaction with the cursor, so a pass stopped anywhere resumes where it was. A new current key
-- starts a new pass.
create table key_rotation (
  scope      text primary key,       -- items | blacklist
  key_id     text not null,          -- the key this pass seals with
  after_key  text not null,          -- cursor: the last row done (batch_id, or entry_id)
  after_seq  integer not null,      -- cursor: its seq (items)
  scanned    integer not null default 0,
  resealed   integer not null default 0,
  started_at integer not null,
  done_at    integer                -- the pass reached the end
);
