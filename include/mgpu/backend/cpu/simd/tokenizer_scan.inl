// mgpu/backend/cpu/simd/tokenizer_scan.inl — the word tokenizer's document loop, included
// (no include guard) once inside each instruction-set namespace of tokenizer_kernels.hpp,
// after that namespace's classify_64, write_positions and keep_tokens, and inside its
// target region, so the whole loop is compiled for the level with the primitives inlined.
// Nothing here may include a header.

/// Writes the text of `doc`, lowered when Lower, from `base` (at most 2·size + 160
/// bytes, 16 zero bytes after the last token) and the begin and end offsets of its
/// tokens (runs of at least two word code points) to `begins` / `ends` (room for
/// size / 2 + 2 + max_positions each); returns the number of tokens. One run after
/// another, each followed by at least one separator byte.
/// @throws invalid_argument if `doc` is not valid UTF-8 (naming `doc_index` and the
///         byte offset).
template <bool Lower>
std::size_t scan(std::string_view doc, std::size_t doc_index, char* const base, std::uint32_t* const begins,
                 std::uint32_t* const ends) {
  auto const* const begin = reinterpret_cast<unsigned char const*>(doc.data());
  auto const* const end = begin + doc.size();
  std::size_t opened = 0;  // runs begun; the last one is open while opened > closed
  std::size_t closed = 0;  // runs ended
  char* w = base;
  auto offset = [&] { return static_cast<std::uint32_t>(w - base); };
  auto const* p = begin;
  while (p < end) {
    auto const avail = static_cast<std::size_t>(end - p);
    auto const masks = classify_64<Lower>(p, avail, w);
    // The ASCII bytes before the first non-ASCII one (or the end) go by the mask.
    auto const ascii =
        std::min<std::size_t>(static_cast<std::size_t>(std::countr_zero(masks.non_ascii)), avail);
    std::uint64_t const inside = ascii < 64 ? (std::uint64_t{1} << ascii) - 1 : ~std::uint64_t{0};
    std::uint64_t const word = masks.word & inside;
    std::uint64_t const prev = (word << 1) | std::uint64_t{opened > closed};
    opened += write_positions(word & ~prev, offset(), begins + opened);
    closed += write_positions(~word & prev & inside, offset(), ends + closed);
    w += ascii;
    p += ascii;
    if (ascii == avail || ascii == 64) continue;
    // Non-ASCII code points (CJK ideographs copied, the others lowered and classified by
    // utf8proc) until the next ASCII byte. One that is not a word character ends the
    // open run; the space keeps tokens apart for join(). A run that is one multi-byte
    // code point (the only runs of one code point longer than a byte) is taken back as
    // soon as that is known; keep_tokens drops the others.
    bool open = opened > closed;
    bool single = false;  // whether the open run is one multi-byte code point so far
    auto extend = [&](bool multibyte) {  // before a word code point is written
      single = !open && multibyte;
      if (!open) begins[opened++] = offset();
      open = true;
    };
    do {
      char32_t cp = 0;
      int const len = ::mgpu::detail::decode_utf8(p, end, cp);
      if (len == 0) {
        throw ::mgpu::invalid_argument(::mgpu::detail::message("document ", doc_index, " is not valid UTF-8: byte 0x",
                                                       std::hex, static_cast<unsigned>(*p), std::dec,
                                                       " at offset ", p - begin));
      }
      if (cp - cjk_first < cjk_count) {
        extend(true);
        std::memcpy(w, p, 3);
        w += 3;
        p += 3;
        continue;
      }
      char32_t lowered[2] = {cp, 0};
      int const n = Lower ? ::mgpu::detail::lower_full(cp, begin, p, end, lowered) : 1;
      p += len;
      for (int i = 0; i < n; ++i) {
        if (::mgpu::detail::is_word_code_point(lowered[i])) {
          extend(lowered[i] >= 0x80u);
          w = ::mgpu::detail::encode_utf8(lowered[i], w);
        } else if (open) {
          if (single) {
            --opened;
          } else {
            ends[closed++] = offset();
          }
          *w++ = ' ';
          open = false;
        }
      }
    } while (p < end && *p >= 0x80u);
    // The next block would close the run at its first byte.
    if (open && single && (p == end || ::mgpu::detail::ascii_word_table<false>[*p] == 0)) --opened;
  }
  if (opened > closed) {
    ends[closed++] = offset();
    *w++ = ' ';
  }
  std::memset(w, 0, 16);  // what hashing reads past the last token is defined
  // The runs left of one code point are one byte.
  return keep_tokens(begins, ends, closed);
}
