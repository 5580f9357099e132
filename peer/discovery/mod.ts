/** Discovery: the Rendezvous client and the REGISTER/DISCOVER schedule with backoff. */
export { Discovery } from "./discovery.ts";
export {
  type RendezvousClient,
  type RendezvousRecord,
  tcpRendezvousClient,
} from "./rendezvous_client.ts";
