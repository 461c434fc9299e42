// SourcesStore: the receiver's per-source high-water marks (sources_store.h).
#include "persistence/sources_store.h"

#include <rocksdb/db.h>
#include <rocksdb/write_batch.h>

#include "persistence/db.h"
#include "persistence/db_internal.h"
#include "persistence/outbox_codec.h"
#include "persistence/store.h"

namespace tally::persistence {

using core::Status;

core::StatusOr<std::unique_ptr<SourcesStore>> SourcesStore::Open(Store& store) {
  std::unique_ptr<SourcesStore> sources(new SourcesStore());
  TALLY_RETURN_IF_ERROR(store.ReadState([&](const Db& db, const rocksdb::Snapshot* snap) {
    rocksdb::ReadOptions ro;
    ro.snapshot = snap;
    std::unique_ptr<rocksdb::Iterator> it(db.rocks()->NewIterator(ro, db.sources()));
    for (it->SeekToFirst(); it->Valid(); it->Next()) {
      SourceInfo info;
      info.source = it->key().ToString();
      TALLY_RETURN_IF_ERROR(
          DecodeSourceMark(std::string_view(it->value().data(), it->value().size()),
                           &info.last_sequence, &info.last_seen));
      sources->sources_[info.source] = info;
    }
    return it->status().ok() ? Status::Ok() : FromRocks(it->status(), "sources: read");
  }));
  store.AddParticipant(sources.get());
  return sources;
}

uint64_t SourcesStore::Mark(const std::string& source) const {
  std::lock_guard lock(mu_);
  auto it = sources_.find(source);
  return it == sources_.end() ? 0 : it->second.last_sequence;
}

void SourcesStore::CountReplay(const std::string& source, TimeNs now) {
  std::lock_guard lock(mu_);
  SourceInfo& info = sources_[source];
  info.source = source;
  ++info.replays;
  info.last_seen = now;
}

std::vector<SourceInfo> SourcesStore::List() const {
  std::lock_guard lock(mu_);
  std::vector<SourceInfo> out;
  for (const auto& [name, info] : sources_) {
    out.push_back(info);
  }
  return out;
}

Status SourcesStore::Stage(const FlushView& flush, rocksdb::WriteBatch* batch) {
  staged_.reset();
  if (flush.source == nullptr) {
    return Status::Ok();
  }
  const FlushSource& src = *flush.source;
  SourceInfo next;
  {
    std::lock_guard lock(mu_);
    auto it = sources_.find(src.source);
    if (it != sources_.end()) {
      next = it->second;
    }
  }
  if (src.last_sequence <= next.last_sequence) {
    return Status::Conflict("source " + src.source + " sequence " +
                            std::to_string(src.last_sequence) + " was applied before (mark " +
                            std::to_string(next.last_sequence) + ")");
  }
  staged_gap_ = src.first_sequence > next.last_sequence + 1;
  next.source = src.source;
  next.last_sequence = src.last_sequence;
  next.last_seen = flush.now;
  batch->Put(flush.db->sources(), src.source, EncodeSourceMark(next.last_sequence, next.last_seen));
  staged_ = std::move(next);
  return Status::Ok();
}

void SourcesStore::Commit(const FlushView& /*flush*/) {
  if (!staged_) {
    return;
  }
  std::lock_guard lock(mu_);
  SourceInfo& info = sources_[staged_->source];
  info.source = staged_->source;
  info.last_sequence = staged_->last_sequence;
  info.last_seen = staged_->last_seen;
  info.gaps += staged_gap_ ? 1 : 0;
  staged_.reset();
}

void SourcesStore::Abort() { staged_.reset(); }

}  // namespace tally::persistence
