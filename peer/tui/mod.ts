/** The terminal UI: screen, line editor, keys, commands and formatting. */
export {
  type Notify,
  NOTIFY_MODES,
  runTerminal,
  shouldUseColor,
  type TerminalOptions,
} from "./terminal.ts";
export { accountCommands, accountNotices } from "./account_commands.ts";
export { fileActivity, fileCommands, fileNotices, formatBytes } from "./file_commands.ts";
export { webCommand } from "./web_command.ts";
