/** Discovery: the Rendezvous client and the REGISTER/DISCOVER schedule with backoff. */
export { Discovery } from "./discovery.ts";
export {
  readRegisterReply,
  type Registrar,
  type RendezvousClient,
  type RendezvousRecord,
  tcpRendezvousClient,
  TrackerRefusal,
} from "./rendezvous_client.ts";
