#include <archive.h>

#include "pod/cas/limits.hpp"

namespace pod::cas {

void enable_image_filters(struct archive* a) {
  archive_read_support_filter_gzip(a);
  archive_read_support_filter_bzip2(a);
  archive_read_support_filter_xz(a);
  archive_read_support_filter_zstd(a);
}

}  // namespace pod::cas
