// Whether this test binary, and so the tallyd of the same build tree, is built with a
// sanitizer. ASan's quarantine and shadow memory (and TSan's shadow) make resident memory
// and address-space figures meaningless, so memory bounds are checked only without one.
#pragma once

namespace tally::testing {

#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
inline constexpr bool kSanitized = true;
#elif defined(__has_feature)
#if __has_feature(address_sanitizer) || __has_feature(thread_sanitizer)
inline constexpr bool kSanitized = true;
#else
inline constexpr bool kSanitized = false;
#endif
#else
inline constexpr bool kSanitized = false;
#endif

}  // namespace tally::testing
