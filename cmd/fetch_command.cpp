// pod image fetch REF: an image from an OCI distribution registry into the store.
#include <cstdio>

#include "commands.hpp"
#include "context.hpp"
#include "pod/cas/fetch.hpp"
#include "pod/runtime/cgroup.hpp"
#include "pod/sys/progress.hpp"

namespace pod::cmd {

namespace {

struct FetchArgs {
  std::string ref, name, platform, cert_dir, authfile, max_json_bytes;
  bool tls_verify = true;
  unsigned parallel = 3;
};

int run_fetch(const FetchArgs& a) {
  auto fail = [&](sys::Error e) { return report(std::move(e).context("fetching '{}'", a.ref)); };
  // Every flag is checked before the store or the network is touched.
  auto ref = cas::parse_registry_ref(a.ref);
  if (!ref) return report(ref.error());
  cas::FetchOptions opts;
  if (!a.name.empty()) {
    auto n = cas::ImageName::parse(a.name);
    if (!n) return fail(n.error());
    opts.import.name = *n;
  }
  if (!a.platform.empty()) {
    auto p = cas::Platform::parse(a.platform);
    if (!p) return fail(p.error());
    opts.import.ingest.platform = *p;
  }
  if (!a.max_json_bytes.empty()) {
    auto v = runtime::parse_size("--max-json-bytes", a.max_json_bytes);
    if (!v) return fail(v.error());
    opts.import.ingest.limits.max_json_bytes = *v;
  }
  if (a.parallel == 0) return fail(sys::Error{EINVAL, "--parallel must be at least 1"});
  opts.parallel = a.parallel;
  opts.tls.verify = a.tls_verify;
  opts.tls.cert_dir = a.cert_dir;
  opts.authfile = a.authfile;
  opts.import.warn = warn;
  opts.import.ingest.warn = warn;
  if (!a.tls_verify)
    warn(
        fmt::format("--tls-verify=false: {} may be reached over plain HTTP or TLS with an unverified "
                    "certificate; only the digests protect the content",
                    ref->host));

  auto os = open_store(sys::FileLock::Mode::shared);
  if (!os) return fail(os.error());
  opts.import.basis = os->basis;
  auto r = cas::fetch_image(os->store, *ref, opts);
  if (!r) return fail(r.error());
  std::string what = r->import.name ? r->import.name->str() : "an unnamed image";
  note(fmt::format("{} {}: {} blob{} downloaded ({}), {} already stored",
                   r->import.changed ? "fetched" : "already present:", what, r->blobs_downloaded,
                   r->blobs_downloaded == 1 ? "" : "s", sys::human_bytes(r->bytes_downloaded), r->blobs_present));
  std::printf("%s\n", r->import.manifest.digest.str().c_str());
  return 0;
}

}  // namespace

void add_fetch_command(CLI::App& image) {
  static FetchArgs fa;
  auto* f = image.add_subcommand("fetch", "fetch an image from a registry; prints its digest");
  f->add_option("REF", fa.ref, "docker://HOST[:PORT]/REPO[:TAG|@sha256:DIGEST]")->required();
  f->add_option("--name", fa.name, "NAME[:TAG] for the image (default: HOST/REPO:TAG)");
  f->add_option("--platform", fa.platform, "OS/ARCH[/VARIANT] from a multi-platform image (default: this machine's)");
  f->add_option("--cert-dir", fa.cert_dir, "directory with ca.crt (and client.cert, client.key)");
  f->add_option("--tls-verify", fa.tls_verify, "false: accept plain HTTP and unverified TLS")->capture_default_str();
  f->add_option("--authfile", fa.authfile,
                "credentials in containers-auth.json form (default: $XDG_RUNTIME_DIR/containers/auth.json, "
                "~/.docker/config.json)");
  f->add_option("--parallel", fa.parallel, "layers downloaded at once")->capture_default_str();
  f->add_option("--max-json-bytes", fa.max_json_bytes, "largest manifest, index or config (default 4M)");
  f->callback([] { chosen_action() = [] { return run_fetch(fa); }; });
}

}  // namespace pod::cmd
