#include <gtest/gtest.h>

#include <optional>
#include <string>
#include <vector>

#include "conf/qemu_conf.hpp"
#include "util/files.hpp"

namespace {

using qmt::conf::AugeasSettings;
using qmt::conf::QemuConf;
using qmt::conf::Value;
using qmt::conf::ValueType;

const std::string k_data_dir = std::string(QMT_TEST_DATA_DIR) + "/qemu.conf";

std::string read_sample(const std::string& name) {
  auto text = qmt::util::read_file(k_data_dir + "/" + name);
  EXPECT_TRUE(text.ok()) << text.error().message;
  return text.ok() ? text.value() : std::string();
}

qmt::util::Result<QemuConf> parse_text(const std::string& text,
                                       const std::string& lens_dir = "") {
  return QemuConf::parse(text, "qemu.conf", AugeasSettings{lens_dir});
}

qmt::util::Result<QemuConf> parse_sample(const std::string& name,
                                         const std::string& lens_dir = "") {
  return QemuConf::parse(read_sample(name), name, AugeasSettings{lens_dir});
}

// Returns the parse error message, or "" when the text parsed.
std::string parse_error(const std::string& text) {
  auto conf = parse_text(text);
  return conf.ok() ? "" : conf.error().message;
}

std::string render(const QemuConf& conf) {
  auto text = conf.render();
  EXPECT_TRUE(text.ok()) << text.error().message;
  return text.ok() ? text.value() : std::string();
}

TEST(QemuConfStock, ParsesWithoutSettings) {
  auto conf = parse_sample("debian-stock.conf");
  ASSERT_TRUE(conf.ok()) << conf.error().message;
  EXPECT_TRUE(conf->keys().empty());
  EXPECT_EQ(conf->count("migrate_tls_x509_verify"), 0u);
  EXPECT_EQ(conf->get("migrate_tls_x509_verify"), std::nullopt);
  EXPECT_EQ(render(*conf), read_sample("debian-stock.conf"));
}

TEST(QemuConfStock, SetAppendsOnlyNewLines) {
  std::string stock = read_sample("debian-stock.conf");
  auto conf = parse_sample("debian-stock.conf");
  ASSERT_TRUE(conf.ok()) << conf.error().message;
  ASSERT_TRUE(conf->set("migrate_tls_x509_cert_dir",
                        Value{ValueType::string, "/etc/pki/qemu-migrate"})
                  .ok());
  ASSERT_TRUE(
      conf->set("migrate_tls_x509_verify", Value{ValueType::boolean, "1"})
          .ok());
  ASSERT_TRUE(
      conf->set("migrate_tls_force", Value{ValueType::boolean, "1"}).ok());
  EXPECT_EQ(render(*conf), stock +
                               "migrate_tls_x509_cert_dir = "
                               "\"/etc/pki/qemu-migrate\"\n"
                               "migrate_tls_x509_verify = 1\n"
                               "migrate_tls_force = 1\n");
}

TEST(QemuConfSet, CommentedKeyGetsActiveLine) {
  std::string text = read_sample("commented.conf");
  auto conf = parse_sample("commented.conf");
  ASSERT_TRUE(conf.ok()) << conf.error().message;
  EXPECT_EQ(conf->count("migrate_tls_x509_verify"), 0u);
  ASSERT_TRUE(
      conf->set("migrate_tls_x509_verify", Value{ValueType::boolean, "1"})
          .ok());
  EXPECT_EQ(conf->count("migrate_tls_x509_verify"), 1u);
  EXPECT_EQ(conf->get("migrate_tls_x509_verify"),
            (Value{ValueType::boolean, "1"}));
  EXPECT_EQ(render(*conf), text + "migrate_tls_x509_verify = 1\n");
}

TEST(QemuConfSet, DuplicatesKeepFirstOnly) {
  auto conf = parse_sample("duplicates.conf");
  ASSERT_TRUE(conf.ok()) << conf.error().message;
  EXPECT_EQ(conf->count("migrate_tls_x509_verify"), 3u);
  EXPECT_EQ(conf->get("migrate_tls_x509_verify"),
            (Value{ValueType::boolean, "0"}));
  ASSERT_TRUE(
      conf->set("migrate_tls_x509_verify", Value{ValueType::boolean, "1"})
          .ok());
  EXPECT_EQ(conf->count("migrate_tls_x509_verify"), 1u);
  EXPECT_EQ(render(*conf),
            "# Lab settings\n"
            "user = \"root\"\n"
            "migrate_tls_x509_verify = 1\n"
            "# The second block repeats a key; libvirt reads the first one.\n"
            "group=\"root\"\n");
}

TEST(QemuConfSet, InPlaceKeepsSpacing) {
  auto conf = parse_sample("duplicates.conf");
  ASSERT_TRUE(conf.ok()) << conf.error().message;
  ASSERT_TRUE(conf->set("group", Value{ValueType::string, "kvm"}).ok());
  EXPECT_EQ(render(*conf),
            "# Lab settings\n"
            "user = \"root\"\n"
            "migrate_tls_x509_verify = 0\n"
            "# The second block repeats a key; libvirt reads the first one.\n"
            "group=\"kvm\"\n"
            "migrate_tls_x509_verify = 1\n"
            "  migrate_tls_x509_verify=0\n");
}

TEST(QemuConfSet, StringWithSpacesIsQuoted) {
  auto conf = parse_sample("commented.conf");
  ASSERT_TRUE(conf.ok()) << conf.error().message;
  ASSERT_TRUE(conf->set("migrate_tls_x509_cert_dir",
                        Value{ValueType::string, "/srv/pki/qemu migrate"})
                  .ok());
  ASSERT_TRUE(conf->set("user", Value{ValueType::string, "qemu user"}).ok());
  EXPECT_EQ(conf->get("user"), (Value{ValueType::string, "qemu user"}));
  EXPECT_EQ(render(*conf),
            "# Settings for TLS migration\n"
            "#\n"
            "#migrate_tls_x509_cert_dir = \"/etc/pki/qemu\"\n"
            "#migrate_tls_x509_verify = 1\n"
            "\n"
            "user = \"qemu user\"\n"
            "migrate_tls_x509_cert_dir = \"/srv/pki/qemu migrate\"\n");
}

TEST(QemuConfSet, EmptyStringIsQuoted) {
  auto conf = parse_text("");
  ASSERT_TRUE(conf.ok()) << conf.error().message;
  ASSERT_TRUE(
      conf->set("migrate_tls_x509_secret_uuid", Value{ValueType::string, ""})
          .ok());
  EXPECT_EQ(render(*conf), "migrate_tls_x509_secret_uuid = \"\"\n");
}

TEST(QemuConfSet, ListsAreWritten) {
  auto conf = parse_text("user = \"root\"\n");
  ASSERT_TRUE(conf.ok()) << conf.error().message;
  ASSERT_TRUE(conf->set("namespaces", Value{ValueType::list, ""}).ok());
  ASSERT_TRUE(conf->set("cgroup_controllers",
                        Value{ValueType::list, "", {"cpu", "devices"}})
                  .ok());
  EXPECT_EQ(conf->get("cgroup_controllers"),
            (Value{ValueType::list, "", {"cpu", "devices"}}));
  EXPECT_EQ(render(*conf),
            "user = \"root\"\n"
            "namespaces = [ ]\n"
            "cgroup_controllers = [ \"cpu\", \"devices\"]\n");
}

TEST(QemuConfSet, SameValueChangesNothing) {
  std::string text = read_sample("lab.conf");
  auto conf = parse_sample("lab.conf");
  ASSERT_TRUE(conf.ok()) << conf.error().message;
  ASSERT_TRUE(conf->set("user", Value{ValueType::string, "root"}).ok());
  ASSERT_TRUE(
      conf->set("dynamic_ownership", Value{ValueType::boolean, "0"}).ok());
  ASSERT_TRUE(conf->set("namespaces", Value{ValueType::list, ""}).ok());
  EXPECT_EQ(render(*conf), text);
}

TEST(QemuConfSet, RejectsQuotedBoolean) {
  auto conf = parse_sample("commented.conf");
  ASSERT_TRUE(conf.ok()) << conf.error().message;
  auto result =
      conf->set("migrate_tls_x509_verify", Value{ValueType::string, "1"});
  ASSERT_FALSE(result.ok());
  EXPECT_EQ(result.error().message,
            "Cannot set migrate_tls_x509_verify = \"1\" in commented.conf: "
            "the Libvirtd_qemu lens accepts only a boolean written bare "
            "(0 or 1) for migrate_tls_x509_verify");
  EXPECT_EQ(render(*conf), read_sample("commented.conf"));
}

TEST(QemuConfSet, RejectsInvalidValues) {
  auto conf = parse_text("");
  ASSERT_TRUE(conf.ok()) << conf.error().message;
  struct Case {
    std::string key;
    Value value;
    std::string message;
  };
  const std::vector<Case> cases = {
      {"migrate_tls_force", Value{ValueType::boolean, "yes"},
       "Cannot set migrate_tls_force in qemu.conf: invalid boolean \"yes\", "
       "expected 0 or 1"},
      {"max_processes", Value{ValueType::number, "-1"},
       "Cannot set max_processes in qemu.conf: invalid number \"-1\", "
       "expected decimal digits"},
      {"user", Value{ValueType::string, "a\"b"},
       "Cannot set user in qemu.conf: the string \"a\"b\" contains '\"', "
       "which libvirt cannot read"},
      {"user", Value{ValueType::string, "a\\b"},
       "Cannot set user in qemu.conf: the string \"a\\b\" contains '\\', "
       "which libvirt cannot read"},
      {"user", Value{ValueType::string, "a\nb"},
       "Cannot set user in qemu.conf: the string \"a\\nb\" contains a line "
       "break, which libvirt cannot read"},
      {"namespaces", Value{ValueType::list, "", {"mount\r"}},
       "Cannot set namespaces in qemu.conf: the list item \"mount\\r\" "
       "contains a line break, which libvirt cannot read"},
      {"migrate_tls_verify", Value{ValueType::boolean, "1"},
       "Cannot set migrate_tls_verify = 1 in qemu.conf: the Libvirtd_qemu "
       "lens does not know the key migrate_tls_verify"},
      {"user", Value{ValueType::list, "", {"root"}},
       "Cannot set user = [ \"root\" ] in qemu.conf: the Libvirtd_qemu lens "
       "accepts only a double-quoted string for user"},
      {"user/..", Value{ValueType::string, "root"},
       "Cannot set \"user/..\" in qemu.conf: invalid key, expected a letter "
       "followed by letters, digits or '_'"},
  };
  for (const Case& test_case : cases) {
    auto result = conf->set(test_case.key, test_case.value);
    ASSERT_FALSE(result.ok()) << test_case.key;
    EXPECT_EQ(result.error().message, test_case.message);
  }
  EXPECT_EQ(render(*conf), "");
}

TEST(QemuConfRemove, DropsEveryActiveOccurrence) {
  auto conf = parse_sample("duplicates.conf");
  ASSERT_TRUE(conf.ok()) << conf.error().message;
  ASSERT_TRUE(conf->remove("migrate_tls_x509_verify").ok());
  ASSERT_TRUE(conf->remove("migrate_tls_force").ok());
  EXPECT_EQ(conf->count("migrate_tls_x509_verify"), 0u);
  EXPECT_EQ(conf->get("migrate_tls_x509_verify"), std::nullopt);
  EXPECT_EQ(render(*conf),
            "# Lab settings\n"
            "user = \"root\"\n"
            "# The second block repeats a key; libvirt reads the first one.\n"
            "group=\"root\"\n");
}

TEST(QemuConfRemove, KeepsComments) {
  auto conf = parse_sample("commented.conf");
  ASSERT_TRUE(conf.ok()) << conf.error().message;
  ASSERT_TRUE(conf->remove("user").ok());
  EXPECT_EQ(render(*conf),
            "# Settings for TLS migration\n"
            "#\n"
            "#migrate_tls_x509_cert_dir = \"/etc/pki/qemu\"\n"
            "#migrate_tls_x509_verify = 1\n"
            "\n");
}

TEST(QemuConfRemove, RejectsInvalidKey) {
  auto conf = parse_text("user = \"root\"\n");
  ASSERT_TRUE(conf.ok()) << conf.error().message;
  auto result = conf->remove("*");
  ASSERT_FALSE(result.ok());
  EXPECT_EQ(result.error().message,
            "Cannot remove \"*\" from qemu.conf: invalid key, expected a "
            "letter followed by letters, digits or '_'");
  EXPECT_EQ(render(*conf), "user = \"root\"\n");
}

TEST(QemuConfRender, UnchangedGivesSameBytes) {
  for (const char* name :
       {"debian-stock.conf", "commented.conf", "duplicates.conf", "lab.conf"}) {
    std::string text = read_sample(name);
    auto conf = parse_sample(name);
    ASSERT_TRUE(conf.ok()) << conf.error().message;
    EXPECT_EQ(render(*conf), text) << name;
  }
}

TEST(QemuConfRender, MissingFinalNewline) {
  auto conf = parse_text("# head\nuser = \"root\"");
  ASSERT_TRUE(conf.ok()) << conf.error().message;
  EXPECT_EQ(render(*conf), "# head\nuser = \"root\"");
  ASSERT_TRUE(conf->set("group", Value{ValueType::string, "root"}).ok());
  EXPECT_EQ(render(*conf), "# head\nuser = \"root\"\ngroup = \"root\"\n");
}

TEST(QemuConfGet, ReadsWrittenTypes) {
  auto conf = parse_sample("lab.conf");
  ASSERT_TRUE(conf.ok()) << conf.error().message;
  EXPECT_EQ(conf->get("user"), (Value{ValueType::string, "root"}));
  EXPECT_EQ(conf->get("dynamic_ownership"), (Value{ValueType::boolean, "0"}));
  EXPECT_EQ(conf->get("max_processes"), (Value{ValueType::number, "4096"}));
  EXPECT_EQ(conf->get("namespaces"), (Value{ValueType::list, ""}));
  EXPECT_EQ(conf->get("cgroup_device_acl"),
            (Value{ValueType::list,
                   "",
                   {"/dev/null", "/dev/full", "/dev/zero", "/dev/random",
                    "/dev/urandom"}}));
  EXPECT_EQ(conf->get("group/.."), std::nullopt);
  EXPECT_EQ(conf->line_of("migration_address"), 8u);
  EXPECT_EQ(conf->keys(),
            (std::vector<std::string>{"user", "group", "dynamic_ownership",
                                      "security_driver", "cgroup_controllers",
                                      "namespaces", "migration_address",
                                      "max_processes", "cgroup_device_acl"}));
}

TEST(QemuConfLens, ValueTypesPerKey) {
  auto conf = parse_text("");
  ASSERT_TRUE(conf.ok()) << conf.error().message;
  using Types = std::vector<ValueType>;
  EXPECT_EQ(conf->lens_value_types("migrate_tls_x509_verify"),
            Types{ValueType::boolean});
  EXPECT_EQ(conf->lens_value_types("migrate_tls_force"),
            Types{ValueType::boolean});
  EXPECT_EQ(conf->lens_value_types("migrate_tls_x509_cert_dir"),
            Types{ValueType::string});
  EXPECT_EQ(conf->lens_value_types("user"), Types{ValueType::string});
  EXPECT_EQ(conf->lens_value_types("max_processes"), Types{ValueType::number});
  EXPECT_EQ(conf->lens_value_types("namespaces"), Types{ValueType::list});
  EXPECT_EQ(conf->lens_value_types("no_such_key"), Types{});
}

TEST(QemuConfParse, TrailingCommentIsError) {
  EXPECT_EQ(parse_error(read_sample("trailing-comment.conf")),
            "qemu.conf:2:22: Iterated lens matched less than it should. The "
            "Libvirtd_qemu lens rejects a comment after a value, so move the "
            "comment to its own line.");
}

TEST(QemuConfParse, SingleQuotesAreError) {
  EXPECT_EQ(parse_error(read_sample("single-quotes.conf")),
            "qemu.conf:1:8: Iterated lens matched less than it should. The "
            "Libvirtd_qemu lens rejects single quotes, so use double "
            "quotes.");
}

TEST(QemuConfParse, CrlfIsError) {
  EXPECT_EQ(parse_error(read_sample("crlf.conf")),
            "qemu.conf:2:14: Iterated lens matched less than it should. The "
            "line ends with CR LF, but the Libvirtd_qemu lens accepts LF "
            "line ends only.");
}

TEST(QemuConfParse, UnterminatedStringIsError) {
  EXPECT_EQ(parse_error(read_sample("unterminated-string.conf")),
            "qemu.conf:2:10: Iterated lens matched less than it should. The "
            "string that starts at line 1, column 8 is not closed on its "
            "line.");
  EXPECT_EQ(parse_error("user = \"root\n"),
            "qemu.conf:2:1: Iterated lens matched less than it should. The "
            "string that starts at line 1, column 8 is not closed on its "
            "line.");
}

TEST(QemuConfParse, MultiLineStringIsError) {
  // The lens reads the string up to the quote on line 2, but libvirt ends it
  // at the line end.
  EXPECT_EQ(parse_error("user = \"root\n# end \"\n"),
            "qemu.conf:1:8: The string of user is not closed on its line. "
            "libvirt rejects a double-quoted string that spans lines.");
}

TEST(QemuConfParse, QuotedBooleanIsError) {
  EXPECT_EQ(parse_error(read_sample("quoted-boolean.conf")),
            "qemu.conf:2:27: Iterated lens matched less than it should. "
            "migrate_tls_x509_verify takes a boolean written bare (0 or 1), "
            "not the string \"1\".");
}

TEST(QemuConfParse, SemicolonIsError) {
  EXPECT_EQ(parse_error(read_sample("semicolon.conf")),
            "qemu.conf:1:14: Iterated lens matched less than it should. The "
            "Libvirtd_qemu lens rejects ';' between settings, so put each "
            "setting on its own line.");
}

TEST(QemuConfParse, OtherLensRejections) {
  EXPECT_EQ(parse_error("user = \"root\"\n  # indented\n"),
            "qemu.conf:2:3: Iterated lens matched less than it should. The "
            "Libvirtd_qemu lens rejects blanks before '#', so start the "
            "comment in column 1.");
  EXPECT_EQ(parse_error("user = \"a\\b\"\n"),
            "qemu.conf:1:10: Iterated lens matched less than it should. The "
            "Libvirtd_qemu lens rejects a backslash in a string.");
  EXPECT_EQ(parse_error("user = root\n"),
            "qemu.conf:1:8: Iterated lens matched less than it should. user "
            "takes a double-quoted string, not the bare value root.");
  EXPECT_EQ(parse_error("migrate_tls_force = 2\n"),
            "qemu.conf:1:21: Iterated lens matched less than it should. "
            "migrate_tls_force takes a boolean written bare (0 or 1), not "
            "the bare value 2.");
  EXPECT_EQ(parse_error("# head\nmigrate_tls_verify = 1\n"),
            "qemu.conf:2:1: Iterated lens matched less than it should. The "
            "Libvirtd_qemu lens does not know the key migrate_tls_verify.");
  EXPECT_EQ(parse_error("user = \"root\" x\n"),
            "qemu.conf:1:14: Iterated lens matched less than it should");
}

TEST(QemuConfParse, NulByteIsError) {
  EXPECT_EQ(parse_error(std::string("user = \"ro\0ot\"\n", 15)),
            "qemu.conf:1:11: Invalid NUL byte. qemu.conf must be a text "
            "file.");
}

TEST(QemuConfParse, BrokenLensIsError) {
  std::string lens_dir = k_data_dir + "/broken-lens";
  auto conf = parse_text("user = \"root\"\n", lens_dir);
  ASSERT_FALSE(conf.ok());
  EXPECT_EQ(conf.error().message,
            "Failed to parse qemu.conf with the Libvirtd_qemu lens: Syntax "
            "error in lens definition: " +
                lens_dir +
                "/libvirtd_qemu.aug:4.0:syntax error, unexpected "
                "$end " +
                lens_dir + "/libvirtd_qemu.aug:syntax error");
}

TEST(QemuConfRender, UntypedLensQuotingIsError) {
  auto conf = parse_text("user = \"root\"\n", k_data_dir + "/untyped-lens");
  ASSERT_TRUE(conf.ok()) << conf.error().message;
  ASSERT_TRUE(
      conf->set("migrate_tls_force", Value{ValueType::boolean, "1"}).ok());
  auto text = conf->render();
  ASSERT_FALSE(text.ok());
  EXPECT_EQ(text.error().message,
            "Failed to render qemu.conf: the Libvirtd_qemu lens did not write "
            "migrate_tls_force as a boolean written bare (0 or 1)");
}

TEST(CheckValueType, QuotedBooleanIsError) {
  auto conf = parse_sample("quoted-boolean.conf", k_data_dir + "/untyped-lens");
  ASSERT_TRUE(conf.ok()) << conf.error().message;
  EXPECT_EQ(conf->get("migrate_tls_x509_verify"),
            (Value{ValueType::string, "1"}));
  auto result =
      qmt::conf::check_value_type(*conf, "migrate_tls_x509_verify",
                                  ValueType::boolean, "/etc/libvirt/qemu.conf");
  ASSERT_FALSE(result.ok());
  EXPECT_EQ(result.error().message,
            "/etc/libvirt/qemu.conf:2: Invalid value for "
            "migrate_tls_x509_verify: found the string \"1\", expected a "
            "boolean written bare (0 or 1)");
  EXPECT_TRUE(qmt::conf::check_value_type(*conf, "user", ValueType::string,
                                          "/etc/libvirt/qemu.conf")
                  .ok());
}

TEST(CheckValueType, BareValueOfUntypedLensPasses) {
  auto conf = parse_text("migrate_tls_force = 1\nmax_files = 7\n",
                         k_data_dir + "/untyped-lens");
  ASSERT_TRUE(conf.ok()) << conf.error().message;
  EXPECT_EQ(conf->get("migrate_tls_force"), (Value{ValueType::number, "1"}));
  EXPECT_TRUE(qmt::conf::check_value_type(*conf, "migrate_tls_force",
                                          ValueType::boolean, "qemu.conf")
                  .ok());
  auto result = qmt::conf::check_value_type(*conf, "max_files",
                                            ValueType::boolean, "qemu.conf");
  ASSERT_FALSE(result.ok());
  EXPECT_EQ(result.error().message,
            "qemu.conf:2: Invalid value for max_files: found the number 7, "
            "expected a boolean written bare (0 or 1)");
}

TEST(CheckValueType, StockLensValues) {
  auto conf = parse_sample("lab.conf");
  ASSERT_TRUE(conf.ok()) << conf.error().message;
  EXPECT_TRUE(
      qmt::conf::check_value_type(*conf, "user", ValueType::string, "lab.conf")
          .ok());
  EXPECT_TRUE(qmt::conf::check_value_type(*conf, "dynamic_ownership",
                                          ValueType::boolean, "lab.conf")
                  .ok());
  EXPECT_TRUE(qmt::conf::check_value_type(*conf, "migrate_tls_force",
                                          ValueType::boolean, "lab.conf")
                  .ok());
  auto result = qmt::conf::check_value_type(*conf, "dynamic_ownership",
                                            ValueType::string, "lab.conf");
  ASSERT_FALSE(result.ok());
  EXPECT_EQ(result.error().message,
            "lab.conf:4: Invalid value for dynamic_ownership: found the "
            "boolean 0, expected a double-quoted string");
}

TEST(CheckValueType, ValueFromSetHasNoLine) {
  auto conf = parse_text("");
  ASSERT_TRUE(conf.ok()) << conf.error().message;
  ASSERT_TRUE(conf->set("user", Value{ValueType::string, "root"}).ok());
  EXPECT_EQ(conf->line_of("user"), std::nullopt);
  auto result = qmt::conf::check_value_type(*conf, "user", ValueType::boolean,
                                            "qemu.conf");
  ASSERT_FALSE(result.ok());
  EXPECT_EQ(result.error().message,
            "qemu.conf: Invalid value for user: found the string \"root\", "
            "expected a boolean written bare (0 or 1)");
}

}  // namespace
