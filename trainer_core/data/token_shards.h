// Token shards: the on-disk token format of llm.c and modded-nanogpt (FineWeb, TinyStories), and
// this project's own token caches.
//
//   header: 256 little-endian int32: [0] magic 20240520, [1] version 1, [2] token count; rest 0
//   body:   token count little-endian uint16 token ids
//
// Shards are read by position with pread, never loaded whole: a data path's resident memory is
// the windows of one batch, whatever the corpus size (the page cache still caches hot shards).
// We read rather than mmap so that the bound also holds under an address-space limit (ulimit -v),
// which a mapping of a corpus larger than the limit would break.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

namespace trainer_core {

constexpr int32_t kShardMagic = 20240520;
constexpr int32_t kShardVersion = 1;
constexpr size_t kShardHeaderBytes = 256 * sizeof(int32_t);

// A sequence of token ids readable by position.
class TokenSource {
 public:
  virtual ~TokenSource() = default;
  virtual size_t size() const = 0;
  // Copies tokens [pos, pos + count); throws with name() on an I/O error or a short file.
  virtual void read(size_t pos, size_t count, uint16_t* out) const = 0;
  virtual const std::string& name() const = 0;  // the shard's path, or a description
};

// Opens a shard and checks its header against the file size; throws a message naming the path
// for a missing file, a bad magic or version, and a truncated file.
std::shared_ptr<const TokenSource> open_shard(const std::string& path);
std::shared_ptr<const TokenSource> memory_tokens(std::vector<uint16_t> tokens, std::string name);

// Writes a shard to a temporary file and renames it into place, so that a reader (or a run that
// was interrupted) never takes a half-written shard for a whole one. Throws on a full disk.
void write_shard(const std::string& path, const uint16_t* tokens, size_t count);

// The shards a data.train / data.val value names, in order: one file, every *.bin file of a
// directory (sorted by name), or a glob pattern (sorted). `field` names the config field in
// errors. Throws when nothing matches.
std::vector<std::string> expand_shard_spec(const std::string& spec, const std::string& field);

}  // namespace trainer_core
