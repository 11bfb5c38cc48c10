// Sans-I/O decoder for the chunked transfer coding. Strict: hex sizes of at most 16 digits
// with no sign, space or overflow, CRLF line ends only, chunk extensions and trailer fields
// bounded and made of valid characters.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace gh::http {

class ChunkedDecoder {
 public:
  struct Step {
    size_t consumed = 0;    // input bytes used by this step
    std::string_view data;  // decoded payload (a view into the input), may be empty
  };

  // Consumes a prefix of `in`. Call again with the rest while it makes progress; when it
  // consumes nothing and yields no data, it needs more input (or is done / failed).
  Step step(std::string_view in);

  bool done() const { return state_ == State::kDone; }
  bool failed() const { return state_ == State::kError; }
  const char* error() const { return error_; }
  // The trailer section once done(): "name: value\r\n" lines (names checked), empty when
  // there was none.
  const std::string& trailers() const { return trailers_; }

 private:
  enum class State {
    kSize,
    kExt,
    kSizeLf,
    kData,
    kDataCr,
    kDataLf,
    kTrailer,
    kTrailerLf,
    kDone,
    kError
  };
  Step fail(const char* why, size_t consumed);

  State state_ = State::kSize;
  uint64_t remaining_ = 0;
  int digits_ = 0;
  size_t line_bytes_ = 0;     // bytes of the current size line or trailer line
  size_t trailer_bytes_ = 0;  // all trailer bytes
  bool trailer_line_empty_ = true;
  const char* error_ = "";
  std::string trailers_;
  size_t trailer_line_start_ = 0;

  static constexpr size_t kMaxLine = 4096;
  static constexpr size_t kMaxTrailer = 16384;
};

// Appends the chunk framing for `n` payload bytes ("<hex>\r\n") to `out`.
void append_chunk_header(std::string& out, size_t n);

}  // namespace gh::http
