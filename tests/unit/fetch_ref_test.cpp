// Registry references, auth files and WWW-Authenticate challenges.
#include <doctest/doctest.h>

#include "pod/cas/registry.hpp"

using namespace pod::cas;

TEST_CASE("docker:// references") {
  auto r = parse_registry_ref("docker://127.0.0.1:5000/test/busybox:v1");
  REQUIRE(r);
  CHECK(r->host == "127.0.0.1:5000");
  CHECK(r->repository == "test/busybox");
  CHECK(r->tag == "v1");
  CHECK(!r->digest);
  CHECK(!r->plain_http);
  CHECK(r->reference() == "v1");
  CHECK(r->str() == "127.0.0.1:5000/test/busybox:v1");

  auto d = parse_registry_ref("docker://reg.example/a/b/c@sha256:" + std::string(64, 'a'));
  REQUIRE(d);
  CHECK(d->repository == "a/b/c");
  CHECK(d->tag.empty());
  REQUIRE(d->digest);
  CHECK(d->reference() == "sha256:" + std::string(64, 'a'));

  auto latest = parse_registry_ref("docker://reg.example:443/busybox");
  REQUIRE(latest);
  CHECK(latest->tag == "latest");

  auto hub = parse_registry_ref("docker://docker.io/busybox:1.36");
  REQUIRE(hub);
  CHECK(hub->host == "docker.io");
  CHECK(hub->endpoint() == "registry-1.docker.io");
  CHECK(hub->repository == "library/busybox");

  auto plain = parse_registry_ref("http://localhost:5000/x:y");
  REQUIRE(plain);
  CHECK(plain->plain_http);
}

TEST_CASE("bad references say which form to use") {
  auto bare = parse_registry_ref("busybox:latest");
  REQUIRE(!bare);
  CHECK(bare.error().message.find("docker://HOST[:PORT]/REPO") != std::string::npos);
  CHECK(bare.error().message.find("names no registry") != std::string::npos);
  auto oci = parse_registry_ref("oci:/tmp/layout:v1");
  REQUIRE(!oci);  // "oci:" is no URL scheme: still no registry named
  auto other = parse_registry_ref("oci-archive:///tmp/x.tar");
  REQUIRE(!other);
  CHECK(other.error().message.find("pod image import") != std::string::npos);
  CHECK(!parse_registry_ref("docker://hostonly"));
  CHECK(!parse_registry_ref("docker:///repo:tag"));
  CHECK(!parse_registry_ref("docker://bad_host!/repo"));
  CHECK(!parse_registry_ref("docker://h/Repo:tag"));
  CHECK(!parse_registry_ref("docker://h/repo:bad/tag"));
  CHECK(!parse_registry_ref("docker://h/repo@sha256:abc"));
  CHECK(!parse_registry_ref("docker://h/repo:tag@sha256:" + std::string(64, 'a')));
  CHECK(!parse_registry_ref("docker://h:port/repo"));
}

TEST_CASE("auth files in containers-auth.json and Docker config.json form") {
  // "alice:s3cr:et" in base64: the password may hold ':'.
  std::string text = R"({"auths": {
      "127.0.0.1:5000": {"auth": "YWxpY2U6czNjcjpldA=="},
      "https://other.example/v1/": {"auth": "Ym9iOnB3"},
      "helper.example": {}
    }, "credsStore": "desktop"})";
  auto a = credentials_from_auth_json(text, "127.0.0.1:5000");
  REQUIRE(a);
  REQUIRE(*a);
  CHECK((*a)->username == "alice");
  CHECK((*a)->password == "s3cr:et");
  auto b = credentials_from_auth_json(text, "other.example");
  REQUIRE(b);
  REQUIRE(*b);
  CHECK((*b)->username == "bob");
  CHECK((*b)->password == "pw");
  auto none = credentials_from_auth_json(text, "nowhere.example");
  REQUIRE(none);
  CHECK(!*none);
  auto hub =
      credentials_from_auth_json(R"({"auths": {"https://index.docker.io/v1/": {"auth": "Ym9iOnB3"}}})", "docker.io");
  REQUIRE(hub);
  REQUIRE(*hub);
  CHECK((*hub)->username == "bob");
  auto helper = credentials_from_auth_json(text, "helper.example");
  REQUIRE(helper);
  CHECK(!*helper);
  CHECK(!credentials_from_auth_json("[]", "x"));
  CHECK(!credentials_from_auth_json(R"({"auths": {"x": {"auth": "bm9jb2xvbg=="}}})", "x"));  // "nocolon"
  CHECK(!credentials_from_auth_json(R"({"auths": {"x": {"auth": "!!"}}})", "x"));
  auto empty = credentials_from_auth_json("{}", "x");
  REQUIRE(empty);
  CHECK(!*empty);
}

TEST_CASE("WWW-Authenticate challenges") {
  auto c = parse_challenge(
      R"(Bearer realm="https://auth.example/token",service="registry.example",scope="repository:a/b:pull,push")");
  REQUIRE(c);
  CHECK(c->scheme == "bearer");
  CHECK(c->params["realm"] == "https://auth.example/token");
  CHECK(c->params["service"] == "registry.example");
  CHECK(c->params["scope"] == "repository:a/b:pull,push");
  auto b = parse_challenge(R"(Basic realm="Registry Realm")");
  REQUIRE(b);
  CHECK(b->scheme == "basic");
  CHECK(b->params["realm"] == "Registry Realm");
  auto esc = parse_challenge(R"(Bearer realm="a\"b", Service=tok)");
  REQUIRE(esc);
  CHECK(esc->params["realm"] == "a\"b");
  CHECK(esc->params["service"] == "tok");
  CHECK(!parse_challenge(""));
  CHECK(!parse_challenge(R"(Bearer realm="unterminated)"));
  CHECK(!parse_challenge("Bearer realm"));
}
