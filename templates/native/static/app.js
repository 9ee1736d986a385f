// Opens the WebSocket at /ws and shows each echoed message.
const ws = new WebSocket((location.protocol === "https:" ? "wss://" : "ws://") + location.host + "/ws");
ws.onmessage = (event) => { document.getElementById("reply").textContent = "echo: " + event.data; };
document.getElementById("send").onclick = () => ws.send(document.getElementById("msg").value);
