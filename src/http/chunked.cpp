#include "http/chunked.h"

#include <string>

#include "http/http1_parser.h"

namespace gh::http {

ChunkedDecoder::Step ChunkedDecoder::fail(const char* why, size_t consumed) {
  state_ = State::kError;
  error_ = why;
  return Step{consumed, {}};
}

ChunkedDecoder::Step ChunkedDecoder::step(std::string_view in) {
  size_t i = 0;
  while (i < in.size()) {
    unsigned char c = static_cast<unsigned char>(in[i]);
    switch (state_) {
      case State::kSize: {
        int v;
        if (c >= '0' && c <= '9')
          v = c - '0';
        else if (c >= 'a' && c <= 'f')
          v = c - 'a' + 10;
        else if (c >= 'A' && c <= 'F')
          v = c - 'A' + 10;
        else if (c == ';' && digits_ > 0) {
          state_ = State::kExt;
          ++i;
          ++line_bytes_;
          continue;
        } else if (c == '\r' && digits_ > 0) {
          state_ = State::kSizeLf;
          ++i;
          continue;
        } else
          return fail("invalid chunk size", i);
        if (++digits_ > 16) return fail("chunk size overflows", i);
        if (remaining_ > (UINT64_MAX >> 4)) return fail("chunk size overflows", i);
        remaining_ = (remaining_ << 4) | static_cast<uint64_t>(v);
        if (remaining_ > static_cast<uint64_t>(INT64_MAX)) return fail("chunk size overflows", i);
        ++i;
        ++line_bytes_;
        break;
      }
      case State::kExt:
        if (c == '\r') {
          state_ = State::kSizeLf;
          ++i;
          continue;
        }
        if (c == '\n' || c == 0 || (c < 0x20 && c != '\t') || c == 0x7f)
          return fail("invalid chunk extension", i);
        if (++line_bytes_ > kMaxLine) return fail("chunk extension too long", i);
        ++i;
        break;
      case State::kSizeLf:
        if (c != '\n') return fail("bare CR in chunk size line", i);
        ++i;
        digits_ = 0;
        line_bytes_ = 0;
        if (remaining_ == 0) {
          state_ = State::kTrailer;
          trailer_line_empty_ = true;
        } else {
          state_ = State::kData;
        }
        break;
      case State::kData: {
        size_t n = in.size() - i;
        if (n > remaining_) n = static_cast<size_t>(remaining_);
        remaining_ -= n;
        if (remaining_ == 0) state_ = State::kDataCr;
        return Step{i + n, in.substr(i, n)};
      }
      case State::kDataCr:
        if (c != '\r') return fail("missing CRLF after chunk data", i);
        state_ = State::kDataLf;
        ++i;
        break;
      case State::kDataLf:
        if (c != '\n') return fail("missing CRLF after chunk data", i);
        state_ = State::kSize;
        ++i;
        break;
      case State::kTrailer:
        if (c == '\r') {
          state_ = State::kTrailerLf;
          ++i;
          continue;
        }
        if (c == '\n' || c == 0 || (c < 0x20 && c != '\t') || c == 0x7f)
          return fail("invalid trailer field", i);
        if (trailer_line_empty_ && (c == ' ' || c == '\t')) return fail("obsolete line folding", i);
        trailer_line_empty_ = false;
        if (++trailer_bytes_ > kMaxTrailer) return fail("trailer section too large", i);
        trailers_ += c;
        ++i;
        break;
      case State::kTrailerLf:
        if (c != '\n') return fail("bare CR in trailer section", i);
        ++i;
        if (trailer_line_empty_) {
          state_ = State::kDone;
          return Step{i, {}};
        }
        {
          // A field line: a token, a colon, then the value.
          std::string_view line(trailers_.data() + trailer_line_start_,
                                trailers_.size() - trailer_line_start_);
          size_t colon = line.find(':');
          if (colon == 0 || colon == std::string_view::npos)
            return fail("invalid trailer field", i);
          for (size_t k = 0; k < colon; ++k)
            if (!is_tchar(static_cast<unsigned char>(line[k])))
              return fail("invalid trailer field", i);
          trailers_ += "\r\n";
          trailer_line_start_ = trailers_.size();
        }
        trailer_line_empty_ = true;
        state_ = State::kTrailer;
        break;
      case State::kDone:
      case State::kError:
        return Step{i, {}};
    }
  }
  return Step{i, {}};
}

void append_chunk_header(std::string& out, size_t n) {
  char buf[24];
  int len = 0;
  static constexpr char kHex[] = "0123456789abcdef";
  char tmp[20];
  int t = 0;
  do {
    tmp[t++] = kHex[n & 15];
    n >>= 4;
  } while (n != 0);
  while (t > 0) buf[len++] = tmp[--t];
  buf[len++] = '\r';
  buf[len++] = '\n';
  out.append(buf, static_cast<size_t>(len));
}

}  // namespace gh::http
