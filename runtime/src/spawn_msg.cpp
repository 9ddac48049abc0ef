// Fixed-size messages over the SOCK_SEQPACKET pair, with fds and credentials.
#include <sys/socket.h>

#include <cerrno>
#include <unistd.h>

#include <cstring>

#include "spawn_proto.hpp"

namespace pod::runtime::detail {

bool send_msg(int sock, const Msg& m, int fd, const void* cred) noexcept {
  iovec iov{const_cast<Msg*>(&m), sizeof m};
  alignas(cmsghdr) char control[CMSG_SPACE(sizeof(int)) + CMSG_SPACE(sizeof(ucred))] = {};
  msghdr h{};
  h.msg_iov = &iov;
  h.msg_iovlen = 1;
  std::size_t len = 0;
  if (fd >= 0) len += CMSG_SPACE(sizeof(int));
  if (cred) len += CMSG_SPACE(sizeof(ucred));
  if (len) {
    h.msg_control = control;
    h.msg_controllen = len;
    cmsghdr* c = CMSG_FIRSTHDR(&h);
    if (fd >= 0) {
      c->cmsg_level = SOL_SOCKET;
      c->cmsg_type = SCM_RIGHTS;
      c->cmsg_len = CMSG_LEN(sizeof(int));
      std::memcpy(CMSG_DATA(c), &fd, sizeof fd);
      c = CMSG_NXTHDR(&h, c);
    }
    if (cred) {
      c->cmsg_level = SOL_SOCKET;
      c->cmsg_type = SCM_CREDENTIALS;
      c->cmsg_len = CMSG_LEN(sizeof(ucred));
      std::memcpy(CMSG_DATA(c), cred, sizeof(ucred));
    }
  }
  ssize_t n;
  do n = ::sendmsg(sock, &h, MSG_NOSIGNAL);
  while (n < 0 && errno == EINTR);
  return n == static_cast<ssize_t>(sizeof m);
}

long recv_msg(int sock, Msg* m, int* fd, int* pid) noexcept {
  iovec iov{m, sizeof *m};
  alignas(cmsghdr) char control[CMSG_SPACE(sizeof(int) * 4) + CMSG_SPACE(sizeof(ucred))] = {};
  msghdr h{};
  h.msg_iov = &iov;
  h.msg_iovlen = 1;
  h.msg_control = control;
  h.msg_controllen = sizeof control;
  *fd = -1;
  if (pid) *pid = 0;
  ssize_t n;
  do n = ::recvmsg(sock, &h, MSG_CMSG_CLOEXEC);
  while (n < 0 && errno == EINTR);
  if (n < 0) return -1;
  for (cmsghdr* c = CMSG_FIRSTHDR(&h); c; c = CMSG_NXTHDR(&h, c)) {
    if (c->cmsg_level != SOL_SOCKET) continue;
    if (c->cmsg_type == SCM_RIGHTS) {
      std::size_t count = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
      for (std::size_t i = 0; i < count; ++i) {
        int got;
        std::memcpy(&got, CMSG_DATA(c) + i * sizeof(int), sizeof got);
        if (*fd < 0)
          *fd = got;
        else
          ::close(got);  // one fd per message; extras are not ours to keep
      }
    } else if (c->cmsg_type == SCM_CREDENTIALS && pid) {
      ucred u;
      std::memcpy(&u, CMSG_DATA(c), sizeof u);
      *pid = u.pid;
    }
  }
  if (n > 0 && n != static_cast<ssize_t>(sizeof *m)) {
    if (*fd >= 0) ::close(*fd);
    *fd = -1;
    errno = EPROTO;
    return -1;
  }
  return n;
}

}  // namespace pod::runtime::detail
