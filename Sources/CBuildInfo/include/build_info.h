#ifndef SECURECHAT_BUILD_INFO_H
#define SECURECHAT_BUILD_INFO_H
/// The git commit this binary was built from (set by Package.swift).
const char *securechat_build_commit(void);
#endif
