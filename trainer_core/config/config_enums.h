// The choices of a TrainConfig as enums, each with its config-file names in one table: parsed
// once at the config's edge (JsonReader, config_fields.h), compared as enums everywhere else.
#pragma once

#include <array>
#include <optional>
#include <ostream>
#include <string>
#include <string_view>
#include <utility>

namespace trainer_core {

enum class Norm { kRmsNorm, kLayerNorm };
enum class Activation { kGelu, kSwiglu };
enum class Attention { kMha, kMla };  // MLA: latent attention (docs/science.md)
enum class Ffn { kDense, kMoe };
enum class OptimizerKind { kAdamW, kMuon };  // the config's optimizer.name
enum class NsCoefficientSet { kJordan, kCubic, kTaylor, kPolarExpress, kSvd, kNone };
enum class RmsMatching { kMoonlight, kOriginal, kNone, kPerLayerDynamic };
enum class TokenizerKind { kByte, kGpt2 };
// What the linear layers' GEMMs read: fp32, or bf16 copies of weights and inputs (mixed
// precision: master weights, gradients and optimizer state stay fp32).
enum class Precision { kFp32, kBf16 };
// How init and learning rates depend on width: standard, or muP (docs/science.md, "muP").
enum class Parametrization { kStandard, kMup };
// The learning-rate schedule after warm-up (trainer_core/optim/schedule.h, docs/science.md):
// cosine over the rest of the run; warmup-stable-decay (peak, then a decay over the run's last
// schedule.decay_fraction); or constant at the peak.
enum class ScheduleKind { kCosine, kWsd, kConstant };
// The shape of a WSD decay, from the peak to lr * min_lr_ratio (schedule.h has the formulas).
enum class DecayShape { kLinear, kCosine, kOneMinusSqrt, kInverseSqrt };

// Each enum's names, in the order error messages list them.
template <typename E, size_t N>
using NameTable = std::array<std::pair<E, const char*>, N>;
constexpr NameTable<Norm, 2> names_of(Norm) {
  return {{{Norm::kRmsNorm, "rmsnorm"}, {Norm::kLayerNorm, "layernorm"}}};
}
constexpr NameTable<Activation, 2> names_of(Activation) {
  return {{{Activation::kGelu, "gelu"}, {Activation::kSwiglu, "swiglu"}}};
}
constexpr NameTable<Attention, 2> names_of(Attention) {
  return {{{Attention::kMha, "mha"}, {Attention::kMla, "mla"}}};
}
constexpr NameTable<Ffn, 2> names_of(Ffn) { return {{{Ffn::kDense, "dense"}, {Ffn::kMoe, "moe"}}}; }
constexpr NameTable<OptimizerKind, 2> names_of(OptimizerKind) {
  return {{{OptimizerKind::kAdamW, "adamw"}, {OptimizerKind::kMuon, "muon"}}};
}
constexpr NameTable<NsCoefficientSet, 6> names_of(NsCoefficientSet) {
  return {{{NsCoefficientSet::kJordan, "jordan"},
           {NsCoefficientSet::kCubic, "cubic"},
           {NsCoefficientSet::kTaylor, "taylor"},
           {NsCoefficientSet::kPolarExpress, "polar_express"},
           {NsCoefficientSet::kSvd, "svd"},
           {NsCoefficientSet::kNone, "none"}}};
}
constexpr NameTable<RmsMatching, 4> names_of(RmsMatching) {
  return {{{RmsMatching::kMoonlight, "moonlight"},
           {RmsMatching::kOriginal, "original"},
           {RmsMatching::kNone, "none"},
           {RmsMatching::kPerLayerDynamic, "per_layer_dynamic"}}};
}
constexpr NameTable<TokenizerKind, 2> names_of(TokenizerKind) {
  return {{{TokenizerKind::kByte, "byte"}, {TokenizerKind::kGpt2, "gpt2"}}};
}
constexpr NameTable<Precision, 2> names_of(Precision) {
  return {{{Precision::kFp32, "fp32"}, {Precision::kBf16, "bf16"}}};
}
constexpr NameTable<Parametrization, 2> names_of(Parametrization) {
  return {{{Parametrization::kStandard, "standard"}, {Parametrization::kMup, "mup"}}};
}

constexpr NameTable<ScheduleKind, 3> names_of(ScheduleKind) {
  return {{{ScheduleKind::kCosine, "cosine"},
           {ScheduleKind::kWsd, "wsd"},
           {ScheduleKind::kConstant, "constant"}}};
}
constexpr NameTable<DecayShape, 4> names_of(DecayShape) {
  return {{{DecayShape::kLinear, "linear"},
           {DecayShape::kCosine, "cosine"},
           {DecayShape::kOneMinusSqrt, "one_minus_sqrt"},
           {DecayShape::kInverseSqrt, "inverse_sqrt"}}};
}

// Whether E is one of the enums above.
template <typename E>
concept ConfigEnum = requires(E e) {
  names_of(e);
};

template <ConfigEnum E>
const char* name_of(E value) {
  for (const auto& [e, name] : names_of(E{}))
    if (e == value) return name;
  return "?";
}

template <ConfigEnum E>
std::optional<E> parse_name(std::string_view name) {
  for (const auto& [e, n] : names_of(E{}))
    if (name == n) return e;
  return std::nullopt;
}

// "a, b, c": what a config may say for E.
template <ConfigEnum E>
std::string names_list() {
  std::string out;
  for (const auto& [e, name] : names_of(E{})) out += (out.empty() ? "" : ", ") + std::string(name);
  return out;
}

// Printed by name (test failure messages, logs).
template <ConfigEnum E>
std::ostream& operator<<(std::ostream& os, E value) {
  return os << name_of(value);
}

}  // namespace trainer_core
