// pod image fetch: manifest (through an index for the platform), config, then the
// layers in parallel, each streamed into its staging file, its hash and its unpacker.
#include "pod/cas/fetch.hpp"

#include <pthread.h>
#include <signal.h>

#include <atomic>
#include <mutex>
#include <thread>

#include <nlohmann/json.hpp>

#include "ingest_internal.hpp"
#include "pod/sys/fs.hpp"
#include "pod/sys/progress.hpp"

namespace pod::cas {

using json = nlohmann::json;
using sys::make_error;

namespace {

// A JSON document read whole: at most `limit` bytes, and the transfer stops there.
BodySink into_string(std::string& out, std::uint64_t limit, std::string what) {
  return [&out, limit, what = std::move(what)](const char* p, std::size_t n) -> Result<void> {
    if (out.size() + n > limit) return make_error(EFBIG, "{} is larger than {} bytes; transfer stopped", what, limit);
    out.append(p, n);
    return {};
  };
}

// A document with a descriptor: never more than it says, nor more than the JSON limit.
Result<std::string> get_json_blob(Registry& reg, Registry::Connection& c, const Descriptor& d, bool manifest,
                                  const Limits& limits) {
  const char* what = manifest ? "manifest" : "config";
  if (d.size > limits.max_json_bytes)
    return make_error(EFBIG, "{} {} is {} bytes, more than the limit of {} (--max-json-bytes)", what, d.digest.str(),
                      d.size, limits.max_json_bytes);
  std::string text;
  auto sink =
      into_string(text, d.size, fmt::format("{} {} (the descriptor says {} bytes)", what, d.digest.str(), d.size));
  if (manifest)
    POD_TRY(reg.get_manifest(c, d.digest.str(), sink));
  else
    POD_TRY(reg.get_blob(c, d.digest, sink));
  POD_TRY_CTX(detail::check_blob(d, text.size(), sha256_of(text)), "{}", what);
  return text;
}

// What a manifest response is: its Content-Type when that is a manifest or index
// type, else the document's own mediaType.
Result<std::string> media_type_of(const std::string& content_type, const std::string& text) {
  if (media::is_index(content_type) || media::is_manifest(content_type)) return content_type;
  json j = json::parse(text, nullptr, false);
  if (j.is_discarded() || !j.is_object()) return make_error(EINVAL, "the manifest is not a JSON object");
  std::string mt = j.contains("mediaType") && j["mediaType"].is_string() ? j["mediaType"].get<std::string>() : "";
  if (media::is_index(mt) || media::is_manifest(mt)) return mt;
  if (!mt.empty()) return make_error(EINVAL, "unknown manifest media type '{}'", mt);
  if (!content_type.empty() && content_type != "application/json" && content_type != "application/octet-stream")
    return make_error(EINVAL, "unknown manifest media type '{}'", content_type);
  return std::string(j.contains("manifests") ? media::kOciIndex : media::kOciManifest);
}

Result<Descriptor> pick_platform(const Index& idx, const Platform& want, const Digest& index_digest) {
  if (idx.manifests.size() == 1 && !idx.manifests.front().platform) return idx.manifests.front();
  std::string seen;
  for (auto& d : idx.manifests) {
    if (!d.platform) continue;
    if (d.platform->matches(want)) return d;
    seen += (seen.empty() ? "" : ", ") + d.platform->str();
  }
  return make_error(ENOENT, "index {}: no image for platform {} (available: {}); choose one with --platform",
                    index_digest.str(), want.str(), seen.empty() ? "none" : seen);
}

struct ResolvedManifest {
  Descriptor desc;
  std::string text;
};

// The image manifest ref names, through image indexes (nested, bounded) for the platform.
Result<ResolvedManifest> resolve_manifest(Registry& reg, Registry::Connection& c, const FetchOptions& opts) {
  const RegistryRef& ref = reg.ref();
  const Limits& limits = opts.import.ingest.limits;
  std::string text;
  Response r = POD_TRY(reg.get_manifest(
      c, ref.reference(), into_string(text, limits.max_json_bytes, fmt::format("the manifest of {}", ref.str()))));
  Digest digest = sha256_of(text);
  if (ref.digest && digest != *ref.digest)
    return make_error(EINVAL, "manifest {}: digest mismatch: the content hashes to {}", ref.digest->str(),
                      digest.str());
  if (!r.docker_digest.empty())
    if (auto said = Digest::parse(r.docker_digest); said && *said != digest)
      return make_error(EINVAL, "manifest of {}: digest mismatch: the registry says {}, the content hashes to {}",
                        ref.str(), said->str(), digest.str());
  std::string mt = POD_TRY_CTX(media_type_of(r.content_type, text), "{}", ref.str());
  Descriptor desc{mt, digest, text.size(), {}, {}};
  for (std::uint32_t depth = 0; media::is_index(desc.media_type); ++depth) {
    if (depth >= limits.max_index_depth)
      return make_error(ELOOP, "{}: image indexes nested deeper than {}", ref.str(), limits.max_index_depth);
    Index idx = POD_TRY_CTX(parse_index(text), "index {}", desc.digest.str());
    desc = POD_TRY(pick_platform(idx, opts.import.ingest.platform, desc.digest));
    if (!media::is_index(desc.media_type) && !media::is_manifest(desc.media_type))
      return make_error(EINVAL, "index entry {}: unknown media type '{}'", desc.digest.str(), desc.media_type);
    text = POD_TRY(get_json_blob(reg, c, desc, true, limits));
  }
  desc.annotations.clear();
  desc.platform.reset();
  return ResolvedManifest{std::move(desc), std::move(text)};
}

// What the download threads share.
struct Shared {
  Registry& reg;
  Store& store;
  const StagingArea& staging;
  const FetchOptions& opts;
  std::mutex mu;  // guards everything below, and Progress and adopt_blob
  std::optional<sys::Progress> progress;
  std::uint64_t done_bytes = 0;
  std::uint64_t downloaded = 0;
  std::optional<sys::Error> first_error;
};

struct LayerJob {
  Descriptor layer;
  Digest diff_id;
  bool unpack = true;  // false: the store has the tree, only the blob is missing
};

// One layer: GET → staging file + SHA-256 + a pipe into unpack_to_staging (a thread),
// checked against the descriptor, then adopted into blobs/ at once.
Result<void> fetch_layer(Shared& sh, Registry::Connection& c, const LayerJob& job) {
  const Descriptor& layer = job.layer;
  detail::BlobWriter w = POD_TRY(detail::BlobWriter::create(sh.staging.blobs()));
  sys::Fd wr;
  std::optional<Result<void>> unpacked;
  std::thread unpacker;
  if (job.unpack) {
    int fds[2];
    if (::pipe2(fds, O_CLOEXEC) != 0) return sys::sys_error("pipe2");
    sys::Fd rd(fds[0]);
    wr = sys::Fd(fds[1]);
    // The fetch draws one bar for all layers; a size of 0 keeps unpack_layer's own away.
    Descriptor quiet = layer;
    quiet.size = 0;
    unpacker = std::thread([&sh, &unpacked, &job, quiet, rd = std::move(rd)]() mutable {
      unpacked = unpack_to_staging(sh.staging, rd, quiet, job.diff_id, sh.opts.import, "");
      rd.reset();  // a writer still feeding us now gets EPIPE and stops
    });
  }
  auto sink = [&](const char* p, std::size_t n) -> Result<void> {
    if (w.size() + n > layer.size)
      return make_error(EINVAL, "the registry sent more than the {} bytes the descriptor says; transfer stopped",
                        layer.size);
    POD_TRY(w.write(p, n));
    if (wr.valid()) {
      // The unpacker stopped (its error comes later): the rest is still hashed, so
      // that a corrupt blob is reported as the digest mismatch it is.
      if (auto r = sys::write_all(wr, std::string_view(p, n)); !r) {
        if (r.error().code != EPIPE) return sys::Unexpected(std::move(r).error());
        wr.reset();
      }
    }
    std::lock_guard lock(sh.mu);
    sh.done_bytes += n;
    if (sh.progress) sh.progress->set(sh.done_bytes);
    return {};
  };
  auto got = sh.reg.get_blob(c, layer.digest, sink);
  wr.reset();  // end of stream for the unpacker
  if (unpacker.joinable()) unpacker.join();
  if (!got) return sys::Unexpected(std::move(got).error().context("layer {}", layer.digest.str()));
  POD_TRY(w.commit(&layer));  // its errors name the blob
  if (unpacked && !*unpacked) return sys::Unexpected(std::move(unpacked->error()));
  std::lock_guard lock(sh.mu);
  POD_TRY(sh.store.adopt_blob(sh.staging.blobs(), layer.digest.hex, layer.digest));
  sh.downloaded += 1;
  return {};
}

// Runs the jobs on up to `parallel` threads; the first failure cancels the rest.
Result<void> fetch_layers(Shared& sh, const std::vector<LayerJob>& jobs, unsigned parallel) {
  std::atomic<std::size_t> next{0};
  auto worker = [&] {
    // A write to a pipe whose unpacker has stopped must return EPIPE, not kill us.
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGPIPE);
    pthread_sigmask(SIG_BLOCK, &set, nullptr);
    auto conn = sh.reg.connection();
    for (;;) {
      std::size_t i = next++;
      if (i >= jobs.size()) return;
      auto r = conn ? fetch_layer(sh, *conn, jobs[i]) : Result<void>(sys::Unexpected(conn.error()));
      if (r) continue;
      std::lock_guard lock(sh.mu);
      if (!sh.first_error && r.error().code != ECANCELED) {
        sh.first_error = std::move(r.error());
        sh.reg.cancel();
      }
      return;
    }
  };
  std::vector<std::thread> threads;
  unsigned n = std::max(1u, std::min<unsigned>(parallel, static_cast<unsigned>(jobs.size())));
  for (unsigned i = 0; i < n; ++i) threads.emplace_back(worker);
  for (auto& t : threads) t.join();
  if (sh.first_error) return sys::Unexpected(std::move(*sh.first_error));
  return {};
}

}  // namespace

Result<FetchResult> fetch_image(Store& store, const RegistryRef& ref, const FetchOptions& opts) {
  const Limits& limits = opts.import.ingest.limits;
  RegistryOptions ro;
  ro.tls = opts.tls;
  ro.warn = opts.import.warn;
  ro.credentials = POD_TRY(find_credentials(opts.authfile, ref.host));
  std::unique_ptr<Registry> reg = POD_TRY(Registry::connect(ref, std::move(ro)));
  Registry::Connection conn = POD_TRY(reg->connection());
  StagingArea staging = POD_TRY(StagingArea::create(store));
  FetchResult out;

  ResolvedManifest man = POD_TRY(resolve_manifest(*reg, conn, opts));
  Manifest m = POD_TRY_CTX(parse_manifest(man.text), "manifest {}", man.desc.digest.str());
  if (!store.has_blob(man.desc.digest)) POD_TRY(detail::stage_bytes(staging.blobs(), man.text));

  std::string ctext;
  if (store.has_blob(m.config.digest)) {
    ctext = POD_TRY(store.read_blob(m.config.digest, limits.max_json_bytes));
    out.blobs_present++;
  } else {
    ctext = POD_TRY(get_json_blob(*reg, conn, m.config, false, limits));
    POD_TRY(detail::stage_bytes(staging.blobs(), ctext));
    out.blobs_downloaded++;
    out.bytes_downloaded += ctext.size();
  }
  ImageConfig cfg = POD_TRY_CTX(parse_config(ctext), "config {}", m.config.digest.str());
  if (cfg.diff_ids.size() != m.layers.size())
    return make_error(EINVAL, "config {} lists {} diff_ids for {} layers", m.config.digest.str(), cfg.diff_ids.size(),
                      m.layers.size());

  std::vector<LayerJob> jobs;
  std::uint64_t total = 0;
  for (std::size_t i = 0; i < m.layers.size(); ++i) {
    const Descriptor& l = m.layers[i];
    bool dup = false;
    for (auto& j : jobs) dup = dup || j.layer.digest == l.digest;
    if (dup) continue;
    if (store.has_blob(l.digest)) {
      out.blobs_present++;  // finish_import unpacks it from the store if its tree is missing
      continue;
    }
    jobs.push_back(LayerJob{l, cfg.diff_ids[i], !store.has_tree(l.digest)});
    total += l.size;
  }

  Shared sh{*reg, store, staging, opts, {}, {}, 0, 0, {}};
  if (!jobs.empty()) {
    sh.progress.emplace(fmt::format("fetching {} layer{}", jobs.size(), jobs.size() == 1 ? "" : "s"), total);
    auto r = fetch_layers(sh, jobs, opts.parallel);
    sh.progress.reset();
    if (!r) return sys::Unexpected(std::move(r).error());
  }
  out.blobs_downloaded += sh.downloaded;
  out.bytes_downloaded += sh.done_bytes;

  IngestedImage img;
  img.format = Format::oci;
  img.manifest = man.desc;
  if (!ref.digest) img.source_name = ref.host + "/" + ref.repository + ":" + ref.tag;
  out.import = POD_TRY(finish_import(store, staging, img, opts.import));
  return out;
}

}  // namespace pod::cas
