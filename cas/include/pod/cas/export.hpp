// Writing a stored image out as an archive other tools read.
#pragma once

#include <string_view>

#include "pod/cas/store.hpp"

namespace pod::cas {

enum class ExportFormat { oci_archive, docker_archive };

[[nodiscard]] Result<ExportFormat> parse_export_format(std::string_view name);

// Writes the image to dir/name (atomically: a temporary file renamed at the end) from
// the original blobs, so owners are as the image says whatever the store's basis.
// docker-archive layers are written uncompressed, as `docker save` does.
[[nodiscard]] Result<void> export_image(const Store& store, const Ref& ref, sys::FdRef dir,
                                        std::string_view name, ExportFormat format);

}  // namespace pod::cas
