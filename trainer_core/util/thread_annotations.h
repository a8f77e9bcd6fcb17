// Lock contracts the compiler checks: Clang's thread-safety analysis (-Wthread-safety, an error in
// the clang build that scripts/fuzz.sh makes) over a mutex that carries the annotations. GCC
// ignores them. The attribute macros are Abseil's (GUARDED_BY, PT_GUARDED_BY, LOCK_RETURNED, ...:
// absl/base/thread_annotations.h, which gRPC's headers include too, so we define no rival ones);
// REQUIRES and EXCLUDES are the two this project adds, in Clang's documented spelling.
//
//   Mutex mu_;                         a capability
//   int n_ GUARDED_BY(mu_);            read or written only with mu_ held
//   void f() REQUIRES(mu_);            callers hold mu_
//   void g() EXCLUDES(mu_);            callers must not hold mu_ (g takes it)
//   MutexLock lock(mu_);               holds mu_ for the scope
#pragma once

#include <absl/base/thread_annotations.h>

#include <mutex>

#ifndef REQUIRES
#define REQUIRES(...) ABSL_EXCLUSIVE_LOCKS_REQUIRED(__VA_ARGS__)
#endif
#ifndef EXCLUDES
#define EXCLUDES(...) ABSL_LOCKS_EXCLUDED(__VA_ARGS__)
#endif

namespace trainer_core {

// std::mutex with the annotations libstdc++ lacks. Waits: std::condition_variable_any on the
// Mutex itself (it is BasicLockable).
class ABSL_LOCKABLE Mutex {
 public:
  void lock() ABSL_EXCLUSIVE_LOCK_FUNCTION() { mu_.lock(); }
  void unlock() ABSL_UNLOCK_FUNCTION() { mu_.unlock(); }

 private:
  std::mutex mu_;
};

// Holds a Mutex for its scope.
class ABSL_SCOPED_LOCKABLE MutexLock {
 public:
  explicit MutexLock(Mutex& mu) ABSL_EXCLUSIVE_LOCK_FUNCTION(mu) : mu_(mu) { mu_.lock(); }
  ~MutexLock() ABSL_UNLOCK_FUNCTION() { mu_.unlock(); }
  MutexLock(const MutexLock&) = delete;
  MutexLock& operator=(const MutexLock&) = delete;

 private:
  Mutex& mu_;
};

}  // namespace trainer_core
