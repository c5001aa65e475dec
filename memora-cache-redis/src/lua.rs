//! Lua every script starts with: many fields in one command.
//!
//! A command a script calls costs more than its work on the fields: a
//! lookup of its key, its arguments and reply converted between Lua and
//! Redis, and, for a write, one entry in the AOF and the replication
//! stream. So the scripts read and write a submission's cards and ledger
//! entries with one `HMGET`/`ZMSCORE` and one `HSET`/`HDEL`/`ZADD`/`ZREM`
//! per key, not one command per field (`docs/PERFORMANCE.md`, "Redis
//! commands per submission").

/// `mcall(cmd, key, list)`: `cmd key list…` in slices of `SLICE` (512)
/// arguments (even, so `field value` and `score member` pairs never split;
/// bounded, so `unpack` and a command's argument count stay small); the
/// replies of the slices concatenated, in order (`{}` for an empty list,
/// which sends nothing).
pub(crate) const MULTI_LUA: &str = r"
local SLICE = 512
local function mcall(cmd, k, list)
  local out = {}
  for s = 1, #list, SLICE do
    local r = redis.call(cmd, k, unpack(list, s, math.min(s + SLICE - 1, #list)))
    if type(r) == 'table' then
      for j = 1, #r do out[#out + 1] = r[j] end
    end
  end
  return out
end
";
