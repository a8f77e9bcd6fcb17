#include "server/provisioning/demand.h"

#include <algorithm>
#include <map>

namespace server {

namespace {

struct Bin {
  int slots = 0, gpus = 0;
  int64_t allocation = 0;  // 0: an active worker or a new node
  bool used = false;
};

// First bin with room for the job (one slot, `gpus` GPUs); false when none has.
bool place(std::vector<Bin>& bins, int gpus) {
  for (Bin& b : bins)
    if (b.slots >= 1 && b.gpus >= gpus) {
      --b.slots;
      b.gpus -= gpus;
      b.used = true;
      return true;
    }
  return false;
}

int order_of(AllocationState state) {  // running first: the nearest capacity
  return state == AllocationState::kRunning ? 0 : state == AllocationState::kRequested ? 1 : 2;
}

}  // namespace

DemandDecision DemandPlanner::plan(const ProvisionSnapshot& snapshot, int64_t now_ms) {
  const AllocationShape& shape = limits_.shape;
  const bool gpu = shape.backend == "cuda";
  DemandDecision d;

  // Waiting jobs: what each sweep may still start, by its queue order.
  std::map<int64_t, int> startable;
  std::vector<int> needs;  // GPUs per waiting job
  for (const PendingJob& job : snapshot.pending) {
    if (job.backend != shape.backend) continue;
    if (job.max_concurrency > 0) {
      auto [it, fresh] = startable.try_emplace(job.sweep_id, 0);
      if (fresh) {
        const auto a = snapshot.active.find(job.sweep_id);
        it->second = job.max_concurrency - (a == snapshot.active.end() ? 0 : a->second);
      }
      if (it->second <= 0) continue;
      --it->second;
    }
    const int g = gpu ? job.gpus : 0;
    if (g > shape.gpus_per_node) {
      ++d.unfit;
      continue;
    }
    needs.push_back(g);
  }
  d.waiting = int(needs.size());
  std::stable_sort(needs.begin(), needs.end(), std::greater<>());

  // What exists: active workers, then the unregistered nodes of open allocations.
  std::vector<Bin> bins;
  for (const LiveWorker& w : snapshot.workers)
    bins.push_back({w.free.free_slots, w.free.free_gpus});
  std::vector<const AllocationRow*> open;
  for (const AllocationRow& a : snapshot.open_allocations)
    if (!a.cancel_requested) open.push_back(&a);
  std::stable_sort(open.begin(), open.end(), [](const AllocationRow* x, const AllocationRow* y) {
    return std::make_pair(order_of(x->state), x->id) < std::make_pair(order_of(y->state), y->id);
  });
  for (const AllocationRow* a : open)
    for (int n = a->workers_registered; n < a->nodes; ++n)
      bins.push_back({a->slots_per_node, a->gpus_per_node, a->id});

  std::vector<Bin> fresh;  // new nodes of the allocation shape
  for (int g : needs) {
    if (place(bins, g)) continue;
    ++d.unplaced;
    if (!place(fresh, g)) {
      fresh.push_back({shape.slots_per_node, shape.gpus_per_node});
      place(fresh, g);
    }
  }
  d.needed = (int(fresh.size()) + shape.nodes - 1) / shape.nodes;

  // Scale up after the need lasted the delay, within the limit.
  int open_now = 0;
  for (const AllocationRow& a : snapshot.open_allocations) open_now += is_open(a.state) ? 1 : 0;
  if (d.needed > 0) {
    if (!need_since_ms_) need_since_ms_ = now_ms;
    if (now_ms - *need_since_ms_ >= limits_.delay_ms) {
      d.request = std::max(0, std::min(d.needed, limits_.max_allocations - open_now));
      if (d.request > 0) need_since_ms_.reset();  // the new allocations count from the next plan
    }
    d.why = std::to_string(d.unplaced) + " waiting " + shape.backend + " job(s) had no free " +
            (gpu ? "GPU" : "slot") + " for " + std::to_string(limits_.delay_ms / 1000) + " s";
  } else {
    need_since_ms_.reset();
  }

  // Withdraw queued allocations no waiting job was placed on.
  std::vector<int64_t> surplus;
  std::map<int64_t, bool> used;
  for (const Bin& b : bins)
    if (b.allocation) used[b.allocation] = used[b.allocation] || b.used;
  for (const AllocationRow* a : open)
    if (a->state == AllocationState::kQueued && a->workers_registered == 0 && !used[a->id])
      surplus.push_back(a->id);
  if (surplus.empty()) {
    surplus_since_ms_.reset();
  } else {
    if (!surplus_since_ms_) surplus_since_ms_ = now_ms;
    if (d.waiting == 0 || now_ms - *surplus_since_ms_ >= limits_.delay_ms) {
      std::sort(surplus.rbegin(), surplus.rend());  // the newest first
      d.withdraw = surplus;
      surplus_since_ms_.reset();
    }
  }
  return d;
}

}  // namespace server
